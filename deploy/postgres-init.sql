-- Dagster's storage lives beside the warehouse on the same server.
create database dagster owner ghmetrics;
