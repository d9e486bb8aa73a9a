-- 0001_ledger: the Postgres ledger, a projection of the engine's journal (DESIGN principle 4).
--
-- Money is integers in the asset's base units; prices are quote base units per lot (as the
-- engine's events carry them). Ids are the engine's. Every table the projector writes is
-- written in the same transaction as its cursor (projection_cursors), so a batch of events is
-- either wholly in the ledger with the cursor past it, or not at all.

-- -- reference tables: names for the small integer codes used below ----------------------------

CREATE TABLE movement_kinds (
    movement_kind smallint PRIMARY KEY,
    name          text NOT NULL UNIQUE
);
INSERT INTO movement_kinds VALUES (1, 'deposit'), (2, 'withdrawal'), (3, 'fill');

CREATE TABLE ledger_account_kinds (
    ledger_kind smallint PRIMARY KEY,
    name        text NOT NULL UNIQUE
);
-- balance:  an account's balance of an asset (the engine's balances; account 0 is the fee account)
-- external: the outside world, seen from one account (where its deposits come from and its
--           withdrawals go)
-- escrow:   an instrument's escrow held for one seller: its receivable from the trades it made
INSERT INTO ledger_account_kinds VALUES (1, 'balance'), (2, 'external'), (3, 'escrow');

CREATE TABLE order_statuses (
    status smallint PRIMARY KEY,
    name   text NOT NULL UNIQUE
);
INSERT INTO order_statuses VALUES
    (1, 'open'), (2, 'partially_filled'), (3, 'filled'), (4, 'cancelled'), (5, 'expired');

-- -- what is traded and who trades ----------------------------------------------------------------

CREATE TABLE assets (
    asset_id smallint PRIMARY KEY CHECK (asset_id >= 0),
    symbol   text NOT NULL UNIQUE,
    decimals smallint NOT NULL CHECK (decimals BETWEEN 0 AND 18)
);

CREATE TABLE accounts (
    account_id bigint PRIMARY KEY CHECK (account_id >= 0),
    role       smallint NOT NULL,  -- risk.codes.Role
    opened_seq bigint NOT NULL CHECK (opened_seq >= 0)  -- 0: opened at genesis (the fee account)
);

-- Used by the gateway; the secret is stored hashed, never in clear.
CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    account_id  bigint NOT NULL,
    secret_hash bytea NOT NULL,
    scopes      text[] NOT NULL CHECK (
        cardinality(scopes) > 0
        AND scopes <@ ARRAY['read', 'trade', 'withdraw', 'admin']::text[]
    ),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE instruments (
    instrument_id   bigint PRIMARY KEY CHECK (instrument_id >= 0),
    name            text UNIQUE,  -- e.g. H100-80G.us-east.20261201T00Z.24h; not in the event
    status          smallint NOT NULL,  -- risk.codes.InstrumentState
    reference_price bigint NOT NULL CHECK (reference_price >= 0),
    max_qty         bigint NOT NULL CHECK (max_qty > 0),
    listed_seq      bigint NOT NULL CHECK (listed_seq > 0),
    updated_seq     bigint NOT NULL CHECK (updated_seq >= listed_seq)
);

-- -- order flow -------------------------------------------------------------------------------------

-- The current state of every order, for queries. The book refuses a duplicate id only among
-- open orders, so an id may come back once its order is done: an order is (order_id,
-- accepted_seq), and at most one of an id's rows is live (status open or partially filled):
-- the projector changes an id's live row and fails if it finds not exactly one.
-- (Columns are ordered bigints first: no alignment padding, smaller rows to write.)
CREATE TABLE orders (
    order_id      bigint NOT NULL,
    accepted_seq  bigint NOT NULL,
    instrument_id bigint NOT NULL,
    account_id    bigint NOT NULL,
    price         bigint NOT NULL CHECK (price > 0),  -- limit price (after the last replace)
    qty           bigint NOT NULL CHECK (qty > 0),  -- total quantity (after the last replace)
    leaves        bigint NOT NULL CHECK (leaves >= 0),
    filled        bigint NOT NULL CHECK (filled >= 0),
    updated_seq   bigint NOT NULL CHECK (updated_seq >= accepted_seq),
    side          smallint NOT NULL CHECK (side IN (1, 2)),  -- 1 buy, 2 sell
    status        smallint NOT NULL CHECK (status BETWEEN 1 AND 5),
    PRIMARY KEY (order_id, accepted_seq),
    CHECK ((status IN (1, 2)) = (leaves > 0))
);
-- An account's open orders. Only live rows are indexed: most orders close within the batch
-- that opened them and never enter it (a full per-account index costs the projector ~10%).
CREATE INDEX orders_live_by_account ON orders (account_id, order_id) WHERE status IN (1, 2);

-- One row per trade (a trade is two ORDER_FILLED events with one trade id).
CREATE TABLE trades (
    trade_id      bigint PRIMARY KEY,
    seq           bigint NOT NULL,
    movement_id   bigint NOT NULL,  -- its ledger entries
    instrument_id bigint NOT NULL,
    price         bigint NOT NULL CHECK (price > 0),
    qty           bigint NOT NULL CHECK (qty > 0),
    buy_order_id  bigint NOT NULL,
    buy_account   bigint NOT NULL,
    sell_order_id bigint NOT NULL,
    sell_account  bigint NOT NULL,
    buy_fee       bigint NOT NULL,  -- negative: a maker rebate
    sell_fee      bigint NOT NULL,
    taker_side    smallint NOT NULL CHECK (taker_side IN (1, 2))
);

-- -- the double-entry ledger ---------------------------------------------------------------------

-- A movement is a set of entries that sum to zero in every asset. movement_id = seq * 2^20 +
-- the movement's place among its command's movements, so it follows the journal's order and a
-- replay produces the same ids. Append-only; a movement is written by one statement (the
-- balance check runs per statement, over the rows it inserted).
--
-- No b-tree: this is the projector's hot path (three rows per fill), and a b-tree on it costs
-- about a third of this table's write time. Rows are appended in movement order, so a BRIN
-- index finds a movement's or a range's entries; per-account totals are in balances. A
-- movement is written once because its anchor row, in the same transaction, has a primary
-- key: the trade (trade_id, one per movement), the deposit or the withdrawal (seq).
CREATE TABLE ledger_entries (
    movement_id   bigint NOT NULL CHECK (movement_id > 0),
    seq           bigint NOT NULL CHECK (seq = movement_id >> 20),
    account_id    bigint NOT NULL,
    instrument_id bigint NOT NULL,  -- 0 unless ledger_kind is escrow
    amount        bigint NOT NULL CHECK (amount <> 0),
    ref           bigint NOT NULL,  -- fills: the trade id; transfers: the caller's reference
    leg           smallint NOT NULL CHECK (leg >= 0),
    movement_kind smallint NOT NULL CHECK (movement_kind BETWEEN 1 AND 3),
    ledger_kind   smallint NOT NULL CHECK (ledger_kind BETWEEN 1 AND 3),
    asset_id      smallint NOT NULL
);
CREATE INDEX ledger_entries_movement ON ledger_entries USING brin (movement_id);

CREATE FUNCTION ledger_entries_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT movement_id, asset_id, sum(amount) AS total INTO bad
    FROM inserted
    GROUP BY movement_id, asset_id
    HAVING sum(amount) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger movement % does not balance: asset % entries sum to %',
            bad.movement_id, bad.asset_id, bad.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced',
                  TABLE = 'ledger_entries';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_entries_balanced
    AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_check_balanced();

CREATE FUNCTION ledger_entries_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation', TABLE = 'ledger_entries';
END
$$;

CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_refuse_change();

-- The sum of each ledger account's entries, kept by the projector in the same transaction.
CREATE TABLE balances (
    ledger_kind   smallint NOT NULL CHECK (ledger_kind BETWEEN 1 AND 3),
    account_id    bigint NOT NULL,
    instrument_id bigint NOT NULL,
    asset_id      smallint NOT NULL,
    amount        bigint NOT NULL,
    updated_seq   bigint NOT NULL,
    PRIMARY KEY (ledger_kind, account_id, instrument_id, asset_id)
);

CREATE TABLE deposits (
    seq           bigint PRIMARY KEY,
    movement_id   bigint NOT NULL,
    account_id    bigint NOT NULL,
    asset_id      smallint NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    ref           bigint NOT NULL,  -- the caller's reference, e.g. the chain transfer
    balance_after bigint NOT NULL
);
CREATE INDEX deposits_ref ON deposits (asset_id, ref) WHERE ref <> 0;
CREATE INDEX deposits_account ON deposits (account_id, seq);

CREATE TABLE withdrawals (
    seq           bigint PRIMARY KEY,
    movement_id   bigint NOT NULL,
    account_id    bigint NOT NULL,
    asset_id      smallint NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    ref           bigint NOT NULL,
    balance_after bigint NOT NULL
);
CREATE INDEX withdrawals_ref ON withdrawals (asset_id, ref) WHERE ref <> 0;
CREATE INDEX withdrawals_account ON withdrawals (account_id, seq);

-- -- projections ------------------------------------------------------------------------------------

-- Each projection's cursor: the last command sequence number whose events it has applied.
CREATE TABLE projection_cursors (
    name       text PRIMARY KEY,
    last_seq   bigint NOT NULL CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
