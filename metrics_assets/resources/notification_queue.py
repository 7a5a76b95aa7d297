"""The notification-queue role: S3 event notifications waiting to be read.

* ``SpoolNotificationQueue`` (local): ``METRICS_SPOOL_DIR``, one message body per file
  (``*.json``), read in name order. Deleting a message deletes its file.
* ``SQSNotificationQueue`` (production): the SQS queue ``S3_NOTIFICATIONS_QUEUE_URL``.

A consumer receives a batch, commits what it learnt, and only then deletes the messages, so
a crash in between re-delivers rather than loses them.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: str
    receipt: str  # what delete() needs: the file name, or SQS's receipt handle


class NotificationQueue(ConfigurableResource):
    """The interface. Sensors annotate their parameter with this class."""

    def receive(self, max_messages: int = 10, wait_seconds: int = 0) -> list[QueueMessage]:
        raise NotImplementedError

    def delete(self, messages: list[QueueMessage]) -> None:
        raise NotImplementedError

    def peek(self, max_messages: int = 10) -> list[QueueMessage]:
        """Look at waiting messages without taking them (a preview): they stay deliverable
        to the next receive at once. Never pass a peeked message to delete()."""
        raise NotImplementedError

    def send(self, body: str) -> None:
        """Enqueue one message (the demo and tests play S3 with it)."""
        raise NotImplementedError


class SpoolNotificationQueue(NotificationQueue):
    spool_dir: str = Field(description="Folder holding one message per *.json file.")

    @property
    def path(self) -> Path:
        return Path(self.spool_dir)

    def receive(self, max_messages: int = 10, wait_seconds: int = 0) -> list[QueueMessage]:
        if not self.path.is_dir():
            return []
        names = sorted(n for n in os.listdir(self.path) if n.endswith(".json"))[:max_messages]
        messages = []
        for name in names:
            try:
                body = (self.path / name).read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:  # taken by a concurrent consumer
                continue
            messages.append(QueueMessage(message_id=name, body=body, receipt=name))
        return messages

    def delete(self, messages: list[QueueMessage]) -> None:
        for message in messages:
            (self.path / message.receipt).unlink(missing_ok=True)

    def peek(self, max_messages: int = 10) -> list[QueueMessage]:
        return self.receive(max_messages)  # reading a file takes nothing away

    def send(self, body: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        # Names sort in arrival order: a nanosecond clock, then a random tail.
        import time

        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.path / (name + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(self.path / name)


class SQSNotificationQueue(NotificationQueue):
    queue_url: str = Field(description="SQS queue URL (S3_NOTIFICATIONS_QUEUE_URL).")
    region_name: str = Field(default="us-east-1")
    endpoint_url: str | None = Field(default=None, description="Override (AWS_ENDPOINT_URL).")
    aws_access_key_id: str | None = Field(default=None)
    aws_secret_access_key: str | None = Field(default=None)

    _client: Any = PrivateAttr(default=None)

    def client(self):
        if self._client is not None:
            return self._client
        import boto3

        kwargs = {"region_name": self.region_name}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.aws_access_key_id:
            kwargs["aws_access_key_id"] = self.aws_access_key_id
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key
        self._client = boto3.client("sqs", **kwargs)
        return self._client

    def receive(self, max_messages: int = 10, wait_seconds: int = 0) -> list[QueueMessage]:
        client = self.client()
        messages: list[QueueMessage] = []
        while len(messages) < max_messages:
            response = client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(messages)),
                WaitTimeSeconds=wait_seconds if not messages else 0,
            )
            batch = response.get("Messages", [])
            if not batch:
                break
            messages.extend(QueueMessage(m["MessageId"], m["Body"], m["ReceiptHandle"]) for m in batch)
        return messages

    def peek(self, max_messages: int = 10) -> list[QueueMessage]:
        # A visibility timeout of 0 leaves each message visible to the next receive at once.
        client = self.client()
        messages: list[QueueMessage] = []
        seen: set[str] = set()
        while len(messages) < max_messages:
            response = client.receive_message(
                QueueUrl=self.queue_url, VisibilityTimeout=0, MaxNumberOfMessages=min(10, max_messages - len(messages))
            )
            batch = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if not batch:
                break
            seen.update(m["MessageId"] for m in batch)
            messages.extend(QueueMessage(m["MessageId"], m["Body"], "") for m in batch)
        return messages

    def delete(self, messages: list[QueueMessage]) -> None:
        client = self.client()
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)],
            )

    def send(self, body: str) -> None:
        self.client().send_message(QueueUrl=self.queue_url, MessageBody=body)
