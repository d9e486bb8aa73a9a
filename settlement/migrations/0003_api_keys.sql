-- API keys that can verify a signed request (gateway/README.md "Signed requests").
-- 0001 stored a secret_hash, which cannot check an HMAC: an HMAC key's secret is now kept
-- encrypted (AES-256-GCM under the configured key-encryption key, the key id as associated
-- data); an Ed25519 key keeps only its 32-byte public key. No code ever wrote the old shape,
-- so rows in it (none are expected) could not verify anything and are removed.
DELETE FROM api_keys;
ALTER TABLE api_keys DROP COLUMN secret_hash;
ALTER TABLE api_keys RENAME COLUMN revoked_at TO disabled_at;
ALTER TABLE api_keys
    ADD COLUMN kind              text NOT NULL CHECK (kind IN ('ed25519', 'hmac')),
    ADD COLUMN public_key        bytea,
    ADD COLUMN secret_nonce      bytea,
    ADD COLUMN secret_ciphertext bytea,
    ADD COLUMN allow_ips         cidr[],
    ADD COLUMN expires_at        timestamptz,
    ADD COLUMN rotated_from      text REFERENCES api_keys (key_id),
    ADD CONSTRAINT api_keys_material CHECK (
        (kind = 'ed25519' AND octet_length(public_key) = 32
            AND secret_nonce IS NULL AND secret_ciphertext IS NULL)
        OR (kind = 'hmac' AND public_key IS NULL
            AND octet_length(secret_nonce) = 12 AND secret_ciphertext IS NOT NULL)
    );
CREATE UNIQUE INDEX api_keys_rotated_from ON api_keys (rotated_from);
