CREATE TABLE aiops_actions (
	id INTEGER NOT NULL, 
	idempotency_key VARCHAR(200) NOT NULL, 
	incident_id INTEGER NOT NULL, 
	check_name VARCHAR(100) NOT NULL, 
	rung INTEGER NOT NULL, 
	action_type VARCHAR(100) NOT NULL, 
	action_label VARCHAR(100) NOT NULL, 
	mode VARCHAR(20) NOT NULL, 
	target VARCHAR(300) NOT NULL, 
	"plan" JSON NOT NULL, 
	state VARCHAR(30) NOT NULL, 
	runs INTEGER NOT NULL, 
	lease_owner VARCHAR(200), 
	lease_expires FLOAT, 
	handle JSON, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	started_at FLOAT, 
	finished_at FLOAT, 
	deadline FLOAT, 
	approval_deadline FLOAT, 
	decided_by VARCHAR(100), 
	guard TEXT, 
	outcome JSON, 
	error TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (idempotency_key), 
	FOREIGN KEY(incident_id) REFERENCES aiops_incidents (id)
);
INSERT INTO "aiops_actions" VALUES(1,'1:0:rollback',1,'latency',0,'rollback','rollback','auto','model:ranker','{"action": "rollback", "description": "roll ranker back to v6", "target": "model:ranker"}','succeeded',1,'host:123:1.0',1700000060.0,'{"run_id": "r-1"}',1700000002.0,1700000005.0,1700000003.0,1700000005.0,NULL,NULL,NULL,NULL,'{"ok": true, "detail": "ranker v6 serving"}',NULL);
INSERT INTO "aiops_actions" VALUES(2,'2:0:rollback',2,'drift',0,'rollback','rollback','approve','model:ranker','{"action": "rollback", "description": "roll ranker back to v6", "target": "model:ranker"}','awaiting_approval',0,NULL,NULL,NULL,1700000041.0,1700000041.0,NULL,NULL,NULL,1700000941.0,NULL,NULL,NULL,NULL);
CREATE TABLE aiops_breakers (
	action_type VARCHAR(100) NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	failures INTEGER NOT NULL, 
	opened_at FLOAT, 
	trial_action_id INTEGER, 
	last_reason TEXT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (action_type)
);
INSERT INTO "aiops_breakers" VALUES('rollback','closed',0,NULL,NULL,'healed',1700000030.0);
CREATE TABLE aiops_check_state (
	check_name VARCHAR(100) NOT NULL, 
	since FLOAT, 
	detector_state JSON NOT NULL, 
	source_state JSON NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (check_name)
);
INSERT INTO "aiops_check_state" VALUES('latency',1700000030.0,'{"p99": {"mean": 0.2, "var": 0.01, "n": 1200}}','{"cursor": 42}',1700000030.0);
INSERT INTO "aiops_check_state" VALUES('drift',NULL,'{}','{"cursor": 7}',1700000040.0);
CREATE TABLE aiops_events (
	id INTEGER NOT NULL, 
	stream VARCHAR(100) NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	ts FLOAT NOT NULL, 
	value FLOAT, 
	labels JSON NOT NULL, 
	data JSON NOT NULL, 
	received_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "aiops_events" VALUES(1,'pushed','point','p99',1700000000.0,0.2,'{}','{}',1700000003.0);
INSERT INTO "aiops_events" VALUES(2,'pushed','point','p99',1700000001.0,2.10000000000000019984e-01,'{}','{}',1700000003.0);
INSERT INTO "aiops_events" VALUES(3,'pushed','point','p99',1700000002.0,0.22,'{}','{}',1700000003.0);
CREATE TABLE aiops_flaps (
	fingerprint VARCHAR(64) NOT NULL, 
	check_name VARCHAR(100) NOT NULL, 
	started_at FLOAT NOT NULL, 
	last_at FLOAT NOT NULL, 
	ended_at FLOAT, 
	opens INTEGER NOT NULL, 
	receivers JSON NOT NULL, 
	payload JSON NOT NULL, 
	PRIMARY KEY (fingerprint)
);
CREATE TABLE aiops_incidents (
	id INTEGER NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	check_name VARCHAR(100) NOT NULL, 
	labels JSON NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	severity VARCHAR(10) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	summary TEXT NOT NULL, 
	evidence JSON NOT NULL, 
	opened_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	firing_at FLOAT, 
	resolved_at FLOAT, 
	last_seen_at FLOAT NOT NULL, 
	rung INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	verify_started_at FLOAT, 
	verify_deadline FLOAT, 
	healthy_ticks INTEGER NOT NULL, 
	acknowledged_by VARCHAR(100), 
	silenced_until FLOAT, 
	guard_note TEXT, 
	notified_firing BOOLEAN NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "aiops_incidents" VALUES(1,'fp-latency','latency','{"series": "latency:p99", "model": "ranker"}','resolved','critical','detector:anomaly','latency p99 is high','{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}',1700000000.0,1700000030.0,NULL,1700000030.0,1700000000.0,0,1,1700000005.0,1700000065.0,3,NULL,NULL,NULL,0);
INSERT INTO "aiops_incidents" VALUES(2,'fp-drift','drift','{"series": "drift:p99", "model": "ranker"}','firing','critical','detector:anomaly','drift p99 is high','{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}',1700000040.0,1700000040.0,NULL,NULL,1700000040.0,0,0,NULL,NULL,0,NULL,NULL,NULL,0);
INSERT INTO "aiops_incidents" VALUES(3,'fp-volume','volume','{"series": "volume:p99", "model": "ranker"}','pending','critical','detector:anomaly','volume p99 is high','{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}',1700000050.0,1700000050.0,NULL,NULL,1700000050.0,0,0,NULL,NULL,0,NULL,NULL,NULL,0);
CREATE TABLE aiops_meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "aiops_meta" VALUES('schema_version','4');
INSERT INTO "aiops_meta" VALUES('paused','0');
CREATE TABLE aiops_notify_groups (
	notifier VARCHAR(100) NOT NULL, 
	group_key VARCHAR(300) NOT NULL, 
	last_flush_at FLOAT NOT NULL, 
	PRIMARY KEY (notifier, group_key)
);
CREATE TABLE aiops_notify_log (
	id INTEGER NOT NULL, 
	notifier VARCHAR(100) NOT NULL, 
	incident_id INTEGER NOT NULL, 
	dedup_key VARCHAR(200) NOT NULL, 
	repeats INTEGER NOT NULL, 
	last_sent_at FLOAT NOT NULL, 
	next_repeat_at FLOAT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_notify_log_notifier_incident UNIQUE (notifier, incident_id)
);
CREATE TABLE aiops_outbox (
	id INTEGER NOT NULL, 
	notifier VARCHAR(100) NOT NULL, 
	dedup_key VARCHAR(200) NOT NULL, 
	incident_id INTEGER, 
	event VARCHAR(30) NOT NULL, 
	payload JSON NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at FLOAT NOT NULL, 
	last_error TEXT, 
	created_at FLOAT NOT NULL, 
	sent_at FLOAT, 
	group_key VARCHAR(300), 
	route JSON, 
	parent_id INTEGER, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_outbox_notifier_dedup UNIQUE (notifier, dedup_key), 
	FOREIGN KEY(incident_id) REFERENCES aiops_incidents (id)
);
INSERT INTO "aiops_outbox" VALUES(1,'oncall','1:firing',1,'firing','{"title": "[FIRING] latency", "text": "p99 is high", "severity": "critical"}','sent',1,1700000000.0,NULL,1700000000.0,1700000001.0,NULL,NULL,NULL);
INSERT INTO "aiops_outbox" VALUES(2,'oncall','1:resolved',1,'resolved','{"title": "[RESOLVED] latency", "text": "p99 is high", "severity": "critical"}','pending',0,1700000030.0,NULL,1700000030.0,NULL,NULL,NULL,NULL);
INSERT INTO "aiops_outbox" VALUES(3,'oncall','2:firing',2,'firing','{"title": "[FIRING] latency", "text": "p99 is high", "severity": "critical"}','pending',0,1700000040.0,NULL,1700000040.0,NULL,'oncall|check=drift','{"group_wait": 30.0, "repeat_interval": 3600.0}',NULL);
CREATE TABLE aiops_silences (
	id INTEGER NOT NULL, 
	matchers JSON NOT NULL, 
	starts_at FLOAT NOT NULL, 
	ends_at FLOAT NOT NULL, 
	created_by VARCHAR(100) NOT NULL, 
	comment TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "aiops_silences" VALUES(1,'["check=volume"]',1700000000.0,1700007200.0,'alice','backfill',1700000000.0);
CREATE TABLE aiops_transitions (
	id INTEGER NOT NULL, 
	incident_id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	from_state VARCHAR(20), 
	to_state VARCHAR(20) NOT NULL, 
	actor VARCHAR(100) NOT NULL, 
	reason TEXT NOT NULL, 
	evidence JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(incident_id) REFERENCES aiops_incidents (id)
);
INSERT INTO "aiops_transitions" VALUES(1,1,1700000000.0,NULL,'firing','detector:default','p99 high','{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}');
INSERT INTO "aiops_transitions" VALUES(2,1,1700000002.0,'firing','remediating','policy','rung 0: rollback','{}');
INSERT INTO "aiops_transitions" VALUES(3,1,1700000005.0,'remediating','verifying','executor','ran','{}');
INSERT INTO "aiops_transitions" VALUES(4,1,1700000030.0,'verifying','resolved','verifier','healed','{"p99": 0.2}');
INSERT INTO "aiops_transitions" VALUES(5,2,1700000040.0,NULL,'firing','detector:ks','drift','{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}');
INSERT INTO "aiops_transitions" VALUES(6,3,1700000050.0,NULL,'pending','detector:volume','few rows','{"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]}');
CREATE INDEX ix_aiops_incidents_fingerprint ON aiops_incidents (fingerprint);
CREATE INDEX ix_aiops_incidents_state ON aiops_incidents (state);
CREATE INDEX ix_aiops_incidents_check_name ON aiops_incidents (check_name);
CREATE INDEX ix_aiops_transitions_incident_id ON aiops_transitions (incident_id);
CREATE INDEX ix_aiops_actions_incident_id ON aiops_actions (incident_id);
CREATE INDEX ix_aiops_actions_target ON aiops_actions (target);
CREATE INDEX ix_aiops_actions_state ON aiops_actions (state);
CREATE INDEX ix_aiops_outbox_state ON aiops_outbox (state);
CREATE INDEX ix_aiops_outbox_group_key ON aiops_outbox (group_key);
CREATE INDEX ix_aiops_outbox_incident_id ON aiops_outbox (incident_id);
CREATE INDEX ix_aiops_events_stream_id ON aiops_events (stream, id);
CREATE INDEX ix_aiops_events_received_at ON aiops_events (received_at);
CREATE INDEX ix_aiops_silences_ends_at ON aiops_silences (ends_at);
CREATE INDEX ix_aiops_notify_log_next_repeat_at ON aiops_notify_log (next_repeat_at);
CREATE INDEX ix_aiops_notify_log_incident_id ON aiops_notify_log (incident_id);
