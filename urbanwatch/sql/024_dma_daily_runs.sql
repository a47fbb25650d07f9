-- The nightly DMA rules on a timer (issue #10, docs/alerts.md "Daily MNF rules"): one row per
-- local night the running engines have evaluated. An engine takes the transaction-scoped
-- advisory lock of the daily run, reads the newest night done here, evaluates the next due
-- night and writes its row in the same transaction, so each night is evaluated once across
-- restarts and however many engine processes run; after downtime the missed nights follow.
-- `urbanwatch alerts daily --date D` (by hand) writes no row here.
CREATE TABLE IF NOT EXISTS dma_daily_runs (
    night   date PRIMARY KEY,                    -- local date of the 00:00–05:00 window
    dmas    integer NOT NULL,                    -- DMAs evaluated (rows in dma_night_flow)
    done_at timestamptz NOT NULL DEFAULT now(),
    done_by text NOT NULL                        -- host and pid of the engine that ran it
);
