"""The register-office side: publisher library, outbox and relay, file publishing, simulated registrations."""

from producers.event_files import EventFileReader, FileFormat, RowError, ValidationReport, validate_file
from producers.file_publishing import ExitCode, FilePublishResult, publish_file
from producers.publisher import DeliveryReport, Publisher, PublishError

__all__ = [
    "DeliveryReport",
    "EventFileReader",
    "ExitCode",
    "FileFormat",
    "FilePublishResult",
    "PublishError",
    "Publisher",
    "RowError",
    "ValidationReport",
    "publish_file",
    "validate_file",
]
