-- Dagster's storage and MLflow's backend live beside the warehouse on the same server.
create database dagster owner ghmetrics;
create database mlflow owner ghmetrics;
