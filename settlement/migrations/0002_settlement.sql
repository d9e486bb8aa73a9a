-- 0002_settlement: the Solana side of settlement (settlement/chain).
--
-- Every transaction the exchange signs is a row of chain_txs, recorded (signature, bytes,
-- last valid block height) BEFORE it is sent, so that a crash at any point leaves enough to
-- resend the same bytes, find out whether they landed (the marker account), or re-sign.
-- Amounts are token base units; addresses are base58 text.

-- deployment: a random id scoping this database's marker accounts (see programs.marker_owner);
-- authority: the settlement authority's public key the rows below were derived from.
CREATE TABLE chain_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE chain_mints (
    asset_id smallint PRIMARY KEY,
    mint     text NOT NULL UNIQUE,
    decimals smallint NOT NULL CHECK (decimals BETWEEN 0 AND 18),
    local    boolean NOT NULL  -- created by the exchange on the embedded runtime
);

-- A token account owned by the settlement authority: one per (account, asset), one escrow
-- and one fee vault per asset. expected = what the chain should hold by our own records:
-- deposits recognised + confirmed transfers in - confirmed transfers out.
CREATE TABLE chain_vaults (
    address       text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('account', 'escrow', 'fee')),
    account_id    bigint CHECK ((kind = 'account') = (account_id IS NOT NULL)),
    asset_id      smallint NOT NULL REFERENCES chain_mints (asset_id),
    seed          text NOT NULL,
    expected      bigint NOT NULL DEFAULT 0,
    deposits_seen bigint NOT NULL DEFAULT 0 CHECK (deposits_seen >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (kind, account_id, asset_id)
);

-- The withdrawal allow-list: an account's registered wallets (owner keys) per asset.
CREATE TABLE chain_wallets (
    account_id    bigint NOT NULL,
    asset_id      smallint NOT NULL REFERENCES chain_mints (asset_id),
    owner         text NOT NULL,
    token_account text NOT NULL,  -- the owner's associated token account for the mint
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, asset_id, owner)
);

-- Each balance rise seen in an account vault, credited by one Deposit command whose ref is
-- derived from (vault, deposits_seen before it), so a retry after a crash finds the same ref.
CREATE TABLE chain_deposits (
    ref         bigint PRIMARY KEY CHECK (ref > 0),
    vault       text NOT NULL REFERENCES chain_vaults (address),
    account_id  bigint NOT NULL,
    asset_id    smallint NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    seen_before bigint NOT NULL CHECK (seen_before >= 0),
    state       text NOT NULL CHECK (state IN ('submitting', 'credited', 'refused')),
    after_seq   bigint NOT NULL,  -- the engine's last seq before the command was submitted
    seq         bigint,  -- the Deposit command's seq
    reason      smallint,  -- exchange.codes.RejectCode when refused
    observed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vault, seen_before),
    CHECK ((state = 'submitting') = (seq IS NULL))
);

-- Bumped before any newly signed transaction is recorded: a reader that saw the same value
-- before and after reading the chain knows nothing new could have landed in between.
CREATE SEQUENCE chain_activity;

CREATE TABLE settlement_batches (
    batch_id     bigint PRIMARY KEY,
    first_seq    bigint NOT NULL,  -- the commands whose fills it settles: first_seq..last_seq
    last_seq     bigint NOT NULL CHECK (last_seq >= first_seq),
    fills        integer NOT NULL CHECK (fills > 0),  -- ORDER_FILLED events (two per trade)
    transfers    integer NOT NULL CHECK (transfers >= 0),
    parts        integer NOT NULL CHECK (parts >= 0),
    journal_seq  bigint NOT NULL,  -- the journal head when the batch was cut ...
    head_hash    text NOT NULL,  -- ... and its hash, anchored in every part's Memo
    state        text NOT NULL
        CHECK (state IN ('pending', 'submitted', 'confirmed', 'expired', 'failed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz
);
CREATE SEQUENCE settlement_batch_ids OWNED BY settlement_batches.batch_id;
CREATE INDEX settlement_batches_open ON settlement_batches (batch_id) WHERE state <> 'confirmed';

CREATE TABLE chain_withdrawals (
    withdrawal_id bigint PRIMARY KEY,  -- also the Withdraw command's ref
    account_id    bigint NOT NULL,
    asset_id      smallint NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    wallet        text NOT NULL,  -- the registered owner key
    destination   text NOT NULL,  -- its token account
    state         text NOT NULL CHECK (state IN (
        'requested',  -- recorded; the Withdraw command may or may not be journaled
        'refused',    -- the engine rejected it (reason); nothing reserved
        'cancelled',  -- never journaled (a crash before submit); nothing reserved
        'reserved',   -- the engine debited the balance; the transfer is being sent
        'completed',  -- the transfer is confirmed
        'failed',     -- the transfer can never land; the reservation must be released
        'released'    -- released by a Deposit with the same ref
    )),
    after_seq     bigint NOT NULL,
    seq           bigint,  -- the Withdraw command's seq
    release_seq   bigint,  -- the compensating Deposit's seq
    reason        smallint,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE chain_withdrawal_ids OWNED BY chain_withdrawals.withdrawal_id;

-- pending -> submitted (signature, last valid block height) -> confirmed | failed, or
-- expired (blockhash too old, marker absent) -> re-signed: submitted again with new bytes.
CREATE TABLE chain_txs (
    tx_id         bigserial PRIMARY KEY,
    purpose       text NOT NULL CHECK (purpose IN ('batch', 'withdrawal')),
    batch_id      bigint REFERENCES settlement_batches (batch_id),
    part          integer CHECK (part >= 0),
    withdrawal_id bigint REFERENCES chain_withdrawals (withdrawal_id),
    marker        text NOT NULL UNIQUE,  -- the seed of its create_account_with_seed marker
    memo          text NOT NULL,
    state         text NOT NULL
        CHECK (state IN ('pending', 'submitted', 'confirmed', 'expired', 'failed')),
    signature     text,
    raw           bytea,
    last_valid_block_height bigint,
    signs         integer NOT NULL DEFAULT 0,  -- 1 + times re-signed
    sends         integer NOT NULL DEFAULT 0,
    error         text,  -- the last refusal (a program error keeps it from landing)
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((purpose = 'batch') = (batch_id IS NOT NULL AND part IS NOT NULL)),
    CHECK ((purpose = 'withdrawal') = (withdrawal_id IS NOT NULL)),
    CHECK (state = 'pending' OR signature IS NOT NULL),
    UNIQUE (batch_id, part)
);
CREATE INDEX chain_txs_open ON chain_txs (tx_id) WHERE state IN ('pending', 'submitted', 'expired');
CREATE INDEX chain_txs_withdrawal ON chain_txs (withdrawal_id) WHERE withdrawal_id IS NOT NULL;

-- The token movements of each transaction (sources are vaults; a destination is a vault or,
-- for a withdrawal, the wallet's token account).
CREATE TABLE chain_transfers (
    tx_id       bigint NOT NULL REFERENCES chain_txs (tx_id),
    idx         smallint NOT NULL,
    source      text NOT NULL REFERENCES chain_vaults (address),
    destination text NOT NULL,
    asset_id    smallint NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (tx_id, idx)
);
CREATE INDEX chain_transfers_destination ON chain_transfers (destination);
CREATE INDEX chain_transfers_source ON chain_transfers (source);
