-- Registry, dead letters and device status: the relational core every service shares.

CREATE TABLE IF NOT EXISTS urbanwatch_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- TARGETS.md "Geography": the leakage target (T8) differs by district class.
CREATE TABLE IF NOT EXISTS districts (
    code           text PRIMARY KEY,
    name_zh        text NOT NULL UNIQUE,
    name_en        text NOT NULL,
    district_class text NOT NULL CHECK (district_class IN ('central', 'county'))
);

INSERT INTO districts (code, name_zh, name_en, district_class) VALUES
    ('wenfeng',    '文峰区', 'Wenfeng District',  'central'),
    ('beiguan',    '北关区', 'Beiguan District',  'central'),
    ('yindu',      '殷都区', 'Yindu District',    'central'),
    ('longan',     '龙安区', 'Long''an District', 'central'),
    ('gaoxin',     '安阳高新技术产业开发区', 'Anyang Hi-tech Zone', 'central'),
    ('shifanqu',   '安阳城乡一体化示范区', 'Anyang Urban-Rural Demonstration Zone', 'central'),
    ('linzhou',    '林州市', 'Linzhou City',      'county'),
    ('anyangxian', '安阳县', 'Anyang County',     'county'),
    ('tangyin',    '汤阴县', 'Tangyin County',    'county'),
    ('neihuang',   '内黄县', 'Neihuang County',   'county'),
    ('huaxian',    '滑县',   'Hua County',        'county')
ON CONFLICT (code) DO NOTHING;

CREATE TABLE IF NOT EXISTS devices (
    device_id       text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('manhole', 'waterlog', 'streetlight', 'watermeter')),
    district        text NOT NULL REFERENCES districts (code),
    lat             double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('planned', 'installed', 'active', 'maintenance', 'retired')),
    installed_at    date,
    commissioned_at date,
    attrs           jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS devices_kind_district_idx ON devices (kind, district);
CREATE INDEX IF NOT EXISTS devices_attrs_idx ON devices USING gin (attrs jsonb_path_ops);

-- Messages ingest could not store, byte for byte, with the reason naming the field.
CREATE TABLE IF NOT EXISTS dead_letters (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    topic         text NOT NULL,
    payload       bytea NOT NULL,
    element_index integer,          -- position in a gateway batch, NULL for a whole message
    device_id     text,
    reason_code   text NOT NULL,
    reason        text NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at);
CREATE INDEX IF NOT EXISTS dead_letters_reason_idx ON dead_letters (reason_code, received_at);

-- Heartbeats, online/offline and last-will messages from `{prefix}/{kind}/{id}/status`.
CREATE TABLE IF NOT EXISTS device_status (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    status      text NOT NULL,
    received_at timestamptz NOT NULL,
    detail      jsonb,
    PRIMARY KEY (device_id, ts, status)
);
