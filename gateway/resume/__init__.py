"""Resumable streams: each stream's events are kept in a log (`log.StreamLog`: Redis
Streams when Redis is configured, else this process), so that a client whose connection
dropped picks the stream up again, on any replica (`routes`)."""
