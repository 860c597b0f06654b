"""Mesos protocol pieces: pure resource/RecordIO helpers and the asyncio scheduler client."""
