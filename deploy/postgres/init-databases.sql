-- One database per service: services own their tables, and router and status both have a
-- table named processed_events. Runs once, when the postgres volume is first initialised.
CREATE DATABASE refdesk_ingest;
CREATE DATABASE refdesk_router;
CREATE DATABASE refdesk_notifier;
CREATE DATABASE refdesk_status;
CREATE DATABASE refdesk_publisher;
