"""The runner queues' consumer: runs each queued backtest, and each chunk of a parameter optimization (its own
queue, same function); reports failed records for SQS to retry."""

from typing import Any

from backtest_engine.sandbox.supervisor import default_supervisor

default_supervisor().start()  # cold start, first: the sandbox's zygote imports while this process does

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response  # noqa: E402
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse  # noqa: E402
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from backtest_service import optimization_runner, runner  # noqa: E402
from backtest_service.job_queue import ChunkMessage, decode_message  # noqa: E402
from backtest_service.observability import logger, metrics, tracer  # noqa: E402
from backtest_service.settings import get_settings  # noqa: E402

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
# Report every failed record, even when all fail (the default raises, failing the invocation).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    message = decode_message(record.body)  # InvalidMessage: retried, then kept in the DLQ for a person
    if isinstance(message, ChunkMessage):
        optimization_runner.handle_chunk(message, receive_count=receive_count)
    else:
        runner.handle_message(record.body, receive_count=receive_count)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
