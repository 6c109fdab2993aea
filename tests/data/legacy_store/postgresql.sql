SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
SET default_tablespace = '';
SET default_table_access_method = heap;
CREATE TABLE public.aiops_actions (
    id integer NOT NULL,
    idempotency_key character varying(200) NOT NULL,
    incident_id integer NOT NULL,
    check_name character varying(100) NOT NULL,
    rung integer NOT NULL,
    action_type character varying(100) NOT NULL,
    action_label character varying(100) NOT NULL,
    mode character varying(20) NOT NULL,
    target character varying(300) NOT NULL,
    plan json NOT NULL,
    state character varying(30) NOT NULL,
    runs integer NOT NULL,
    lease_owner character varying(200),
    lease_expires double precision,
    handle json,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    deadline double precision,
    approval_deadline double precision,
    decided_by character varying(100),
    guard text,
    outcome json,
    error text
);
CREATE SEQUENCE public.aiops_actions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_actions_id_seq OWNED BY public.aiops_actions.id;
CREATE TABLE public.aiops_breakers (
    action_type character varying(100) NOT NULL,
    state character varying(20) NOT NULL,
    failures integer NOT NULL,
    opened_at double precision,
    trial_action_id integer,
    last_reason text,
    updated_at double precision NOT NULL
);
CREATE TABLE public.aiops_check_state (
    check_name character varying(100) NOT NULL,
    since double precision,
    detector_state json NOT NULL,
    source_state json NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE public.aiops_events (
    id integer NOT NULL,
    stream character varying(100) NOT NULL,
    kind character varying(10) NOT NULL,
    name character varying(200) NOT NULL,
    ts double precision NOT NULL,
    value double precision,
    labels json NOT NULL,
    data json NOT NULL,
    received_at double precision NOT NULL
);
CREATE SEQUENCE public.aiops_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_events_id_seq OWNED BY public.aiops_events.id;
CREATE TABLE public.aiops_flaps (
    fingerprint character varying(64) NOT NULL,
    check_name character varying(100) NOT NULL,
    started_at double precision NOT NULL,
    last_at double precision NOT NULL,
    ended_at double precision,
    opens integer NOT NULL,
    receivers json NOT NULL,
    payload json NOT NULL
);
CREATE TABLE public.aiops_incidents (
    id integer NOT NULL,
    fingerprint character varying(64) NOT NULL,
    check_name character varying(100) NOT NULL,
    labels json NOT NULL,
    state character varying(20) NOT NULL,
    severity character varying(10) NOT NULL,
    kind character varying(40) NOT NULL,
    summary text NOT NULL,
    evidence json NOT NULL,
    opened_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    firing_at double precision,
    resolved_at double precision,
    last_seen_at double precision NOT NULL,
    rung integer NOT NULL,
    attempts integer NOT NULL,
    verify_started_at double precision,
    verify_deadline double precision,
    healthy_ticks integer NOT NULL,
    acknowledged_by character varying(100),
    silenced_until double precision,
    guard_note text,
    notified_firing boolean NOT NULL
);
CREATE SEQUENCE public.aiops_incidents_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_incidents_id_seq OWNED BY public.aiops_incidents.id;
CREATE TABLE public.aiops_meta (
    key character varying(64) NOT NULL,
    value text NOT NULL
);
CREATE TABLE public.aiops_notify_groups (
    notifier character varying(100) NOT NULL,
    group_key character varying(300) NOT NULL,
    last_flush_at double precision NOT NULL
);
CREATE TABLE public.aiops_notify_log (
    id integer NOT NULL,
    notifier character varying(100) NOT NULL,
    incident_id integer NOT NULL,
    dedup_key character varying(200) NOT NULL,
    repeats integer NOT NULL,
    last_sent_at double precision NOT NULL,
    next_repeat_at double precision
);
CREATE SEQUENCE public.aiops_notify_log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_notify_log_id_seq OWNED BY public.aiops_notify_log.id;
CREATE TABLE public.aiops_outbox (
    id integer NOT NULL,
    notifier character varying(100) NOT NULL,
    dedup_key character varying(200) NOT NULL,
    incident_id integer,
    event character varying(30) NOT NULL,
    payload json NOT NULL,
    state character varying(20) NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at double precision NOT NULL,
    last_error text,
    created_at double precision NOT NULL,
    sent_at double precision,
    group_key character varying(300),
    route json,
    parent_id integer
);
CREATE SEQUENCE public.aiops_outbox_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_outbox_id_seq OWNED BY public.aiops_outbox.id;
CREATE TABLE public.aiops_silences (
    id integer NOT NULL,
    matchers json NOT NULL,
    starts_at double precision NOT NULL,
    ends_at double precision NOT NULL,
    created_by character varying(100) NOT NULL,
    comment text NOT NULL,
    created_at double precision NOT NULL
);
CREATE SEQUENCE public.aiops_silences_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_silences_id_seq OWNED BY public.aiops_silences.id;
CREATE TABLE public.aiops_transitions (
    id integer NOT NULL,
    incident_id integer NOT NULL,
    at double precision NOT NULL,
    from_state character varying(20),
    to_state character varying(20) NOT NULL,
    actor character varying(100) NOT NULL,
    reason text NOT NULL,
    evidence json NOT NULL
);
CREATE SEQUENCE public.aiops_transitions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.aiops_transitions_id_seq OWNED BY public.aiops_transitions.id;
ALTER TABLE ONLY public.aiops_actions ALTER COLUMN id SET DEFAULT nextval('public.aiops_actions_id_seq'::regclass);
ALTER TABLE ONLY public.aiops_events ALTER COLUMN id SET DEFAULT nextval('public.aiops_events_id_seq'::regclass);
ALTER TABLE ONLY public.aiops_incidents ALTER COLUMN id SET DEFAULT nextval('public.aiops_incidents_id_seq'::regclass);
ALTER TABLE ONLY public.aiops_notify_log ALTER COLUMN id SET DEFAULT nextval('public.aiops_notify_log_id_seq'::regclass);
ALTER TABLE ONLY public.aiops_outbox ALTER COLUMN id SET DEFAULT nextval('public.aiops_outbox_id_seq'::regclass);
ALTER TABLE ONLY public.aiops_silences ALTER COLUMN id SET DEFAULT nextval('public.aiops_silences_id_seq'::regclass);
ALTER TABLE ONLY public.aiops_transitions ALTER COLUMN id SET DEFAULT nextval('public.aiops_transitions_id_seq'::regclass);
INSERT INTO public.aiops_actions VALUES (1, '1:0:rollback', 1, 'latency', 0, 'rollback', 'rollback', 'auto', 'model:ranker', '{"action": "rollback", "description": "roll ranker back to v6", "target": "model:ranker"}', 'succeeded', 1, 'host:123:1.0', 1700000060, '{"run_id": "r-1"}', 1700000002, 1700000005, 1700000003, 1700000005, NULL, NULL, NULL, NULL, '{"ok": true, "detail": "ranker v6 serving"}', NULL);
INSERT INTO public.aiops_actions VALUES (2, '2:0:rollback', 2, 'drift', 0, 'rollback', 'rollback', 'approve', 'model:ranker', '{"action": "rollback", "description": "roll ranker back to v6", "target": "model:ranker"}', 'awaiting_approval', 0, NULL, NULL, NULL, 1700000041, 1700000041, NULL, NULL, NULL, 1700000941, NULL, NULL, NULL, NULL);
INSERT INTO public.aiops_breakers VALUES ('rollback', 'closed', 0, NULL, NULL, 'healed', 1700000030);
INSERT INTO public.aiops_check_state VALUES ('latency', 1700000030, '{"p99": {"mean": 0.2, "var": 0.01, "n": 1200}}', '{"cursor": 42}', 1700000030);
INSERT INTO public.aiops_check_state VALUES ('drift', NULL, '{}', '{"cursor": 7}', 1700000040);
INSERT INTO public.aiops_events VALUES (1, 'pushed', 'point', 'p99', 1700000000, 0.2, '{}', '{}', 1700000003);
INSERT INTO public.aiops_events VALUES (2, 'pushed', 'point', 'p99', 1700000001, 0.21000000000000002, '{}', '{}', 1700000003);
INSERT INTO public.aiops_events VALUES (3, 'pushed', 'point', 'p99', 1700000002, 0.22, '{}', '{}', 1700000003);
INSERT INTO public.aiops_incidents VALUES (1, 'fp-latency', 'latency', '{"series": "latency:p99", "model": "ranker"}', 'resolved', 'critical', 'detector:anomaly', 'latency p99 is high', '{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}', 1700000000, 1700000030, NULL, 1700000030, 1700000000, 0, 1, 1700000005, 1700000065, 3, NULL, NULL, NULL, false);
INSERT INTO public.aiops_incidents VALUES (2, 'fp-drift', 'drift', '{"series": "drift:p99", "model": "ranker"}', 'firing', 'critical', 'detector:anomaly', 'drift p99 is high', '{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}', 1700000040, 1700000040, NULL, NULL, 1700000040, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, false);
INSERT INTO public.aiops_incidents VALUES (3, 'fp-volume', 'volume', '{"series": "volume:p99", "model": "ranker"}', 'pending', 'critical', 'detector:anomaly', 'volume p99 is high', '{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}', 1700000050, 1700000050, NULL, NULL, 1700000050, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, false);
INSERT INTO public.aiops_meta VALUES ('schema_version', '4');
INSERT INTO public.aiops_meta VALUES ('paused', '0');
INSERT INTO public.aiops_outbox VALUES (1, 'oncall', '1:firing', 1, 'firing', '{"title": "[FIRING] latency", "text": "p99 is high", "severity": "critical"}', 'sent', 1, 1700000000, NULL, 1700000000, 1700000001, NULL, NULL, NULL);
INSERT INTO public.aiops_outbox VALUES (2, 'oncall', '1:resolved', 1, 'resolved', '{"title": "[RESOLVED] latency", "text": "p99 is high", "severity": "critical"}', 'pending', 0, 1700000030, NULL, 1700000030, NULL, NULL, NULL, NULL);
INSERT INTO public.aiops_outbox VALUES (3, 'oncall', '2:firing', 2, 'firing', '{"title": "[FIRING] latency", "text": "p99 is high", "severity": "critical"}', 'pending', 0, 1700000040, NULL, 1700000040, NULL, 'oncall|check=drift', '{"group_wait": 30.0, "repeat_interval": 3600.0}', NULL);
INSERT INTO public.aiops_silences VALUES (1, '["check=volume"]', 1700000000, 1700007200, 'alice', 'backfill', 1700000000);
INSERT INTO public.aiops_transitions VALUES (1, 1, 1700000000, NULL, 'firing', 'detector:default', 'p99 high', '{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}');
INSERT INTO public.aiops_transitions VALUES (2, 1, 1700000002, 'firing', 'remediating', 'policy', 'rung 0: rollback', '{}');
INSERT INTO public.aiops_transitions VALUES (3, 1, 1700000005, 'remediating', 'verifying', 'executor', 'ran', '{}');
INSERT INTO public.aiops_transitions VALUES (4, 1, 1700000030, 'verifying', 'resolved', 'verifier', 'healed', '{"p99": 0.2}');
INSERT INTO public.aiops_transitions VALUES (5, 2, 1700000040, NULL, 'firing', 'detector:ks', 'drift', '{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}');
INSERT INTO public.aiops_transitions VALUES (6, 3, 1700000050, NULL, 'pending', 'detector:volume', 'few rows', '{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}');
SELECT pg_catalog.setval('public.aiops_actions_id_seq', 2, true);
SELECT pg_catalog.setval('public.aiops_events_id_seq', 3, true);
SELECT pg_catalog.setval('public.aiops_incidents_id_seq', 3, true);
SELECT pg_catalog.setval('public.aiops_notify_log_id_seq', 1, false);
SELECT pg_catalog.setval('public.aiops_outbox_id_seq', 3, true);
SELECT pg_catalog.setval('public.aiops_silences_id_seq', 1, true);
SELECT pg_catalog.setval('public.aiops_transitions_id_seq', 6, true);
ALTER TABLE ONLY public.aiops_actions
    ADD CONSTRAINT aiops_actions_idempotency_key_key UNIQUE (idempotency_key);
ALTER TABLE ONLY public.aiops_actions
    ADD CONSTRAINT aiops_actions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_breakers
    ADD CONSTRAINT aiops_breakers_pkey PRIMARY KEY (action_type);
ALTER TABLE ONLY public.aiops_check_state
    ADD CONSTRAINT aiops_check_state_pkey PRIMARY KEY (check_name);
ALTER TABLE ONLY public.aiops_events
    ADD CONSTRAINT aiops_events_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_flaps
    ADD CONSTRAINT aiops_flaps_pkey PRIMARY KEY (fingerprint);
ALTER TABLE ONLY public.aiops_incidents
    ADD CONSTRAINT aiops_incidents_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_meta
    ADD CONSTRAINT aiops_meta_pkey PRIMARY KEY (key);
ALTER TABLE ONLY public.aiops_notify_groups
    ADD CONSTRAINT aiops_notify_groups_pkey PRIMARY KEY (notifier, group_key);
ALTER TABLE ONLY public.aiops_notify_log
    ADD CONSTRAINT aiops_notify_log_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_outbox
    ADD CONSTRAINT aiops_outbox_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_silences
    ADD CONSTRAINT aiops_silences_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_transitions
    ADD CONSTRAINT aiops_transitions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aiops_notify_log
    ADD CONSTRAINT uq_notify_log_notifier_incident UNIQUE (notifier, incident_id);
ALTER TABLE ONLY public.aiops_outbox
    ADD CONSTRAINT uq_outbox_notifier_dedup UNIQUE (notifier, dedup_key);
CREATE INDEX ix_aiops_actions_incident_id ON public.aiops_actions USING btree (incident_id);
CREATE INDEX ix_aiops_actions_state ON public.aiops_actions USING btree (state);
CREATE INDEX ix_aiops_actions_target ON public.aiops_actions USING btree (target);
CREATE INDEX ix_aiops_events_received_at ON public.aiops_events USING btree (received_at);
CREATE INDEX ix_aiops_events_stream_id ON public.aiops_events USING btree (stream, id);
CREATE INDEX ix_aiops_incidents_check_name ON public.aiops_incidents USING btree (check_name);
CREATE INDEX ix_aiops_incidents_fingerprint ON public.aiops_incidents USING btree (fingerprint);
CREATE INDEX ix_aiops_incidents_state ON public.aiops_incidents USING btree (state);
CREATE INDEX ix_aiops_notify_log_incident_id ON public.aiops_notify_log USING btree (incident_id);
CREATE INDEX ix_aiops_notify_log_next_repeat_at ON public.aiops_notify_log USING btree (next_repeat_at);
CREATE INDEX ix_aiops_outbox_group_key ON public.aiops_outbox USING btree (group_key);
CREATE INDEX ix_aiops_outbox_incident_id ON public.aiops_outbox USING btree (incident_id);
CREATE INDEX ix_aiops_outbox_state ON public.aiops_outbox USING btree (state);
CREATE INDEX ix_aiops_silences_ends_at ON public.aiops_silences USING btree (ends_at);
CREATE INDEX ix_aiops_transitions_incident_id ON public.aiops_transitions USING btree (incident_id);
ALTER TABLE ONLY public.aiops_actions
    ADD CONSTRAINT aiops_actions_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.aiops_incidents(id);
ALTER TABLE ONLY public.aiops_outbox
    ADD CONSTRAINT aiops_outbox_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.aiops_incidents(id);
ALTER TABLE ONLY public.aiops_transitions
    ADD CONSTRAINT aiops_transitions_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.aiops_incidents(id);
