"""The usage API: `valueverse api serve` (FastAPI on uvicorn) in front of Kafka and the marts."""
