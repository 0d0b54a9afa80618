"""Alarms (to an SNS topic, optionally e-mailed) and one CloudWatch dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from backtest_service.topology import METRICS_NAMESPACE, RUN_BACKTEST, SERVICE_NAME
from infra.config import StageConfig
from infra.nag import acknowledge
from infra.parts.api import Api
from infra.parts.functions import Functions
from infra.parts.queues import JobQueues

THROTTLED_SUBMISSIONS_PER_5_MINUTES = 50
FIVE_MINUTES = Duration.minutes(5)
# A job older than this in the queue means the runner is not keeping up (or not running at all).
BACKLOG_AGE_SECONDS = 3600
API_LATENCY_P95_MS = 3000


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        api: Api,
        functions: Functions,
        queues: JobQueues,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{config.resource_prefix} alarms",
            enforce_ssl=True,
            master_key=key,  # the customer-managed key with kms=true (its policy lets CloudWatch publish)
        )
        if key is None:
            acknowledge(
                self.topic,
                "AwsSolutions-SNS2",
                "Alarm notifications carry alarm names and metric values only; CloudWatch cannot publish to "
                "a topic encrypted with the AWS-managed aws/sns key, and the customer-managed key (`-c "
                "kms=true`) costs $1 a month to protect nothing sensitive. Publishing requires TLS (enforceSSL).",
            )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []
        action = cw_actions.SnsAction(self.topic)

        def alarm(
            alarm_id: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            *,
            periods: int = 1,
            comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        ) -> None:
            created = cloudwatch.Alarm(
                self,
                alarm_id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                comparison_operator=comparison,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms.append(created)

        at_least_one = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        alarm(
            "DeadLetterQueueNotEmpty",
            queues.dead_letter.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            0,
            "Jobs failed every attempt and wait in the dead-letter queue: read the runner's logs, fix, "
            "then `backtest replay --stack-name <stack>`.",
        )
        alarm(
            "JobsBacklogOld",
            queues.jobs.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum"),
            BACKLOG_AGE_SECONDS,
            "A queued job has waited over an hour: the runner is throttled, failing or not consuming.",
        )
        # Parameter optimizations (issue 14): the chunks queue's DLQ and backlog, like the jobs queue's.
        alarm(
            "OptimizationDeadLetterQueueNotEmpty",
            queues.optimization_dead_letter.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            0,
            "Optimization chunks failed every attempt and wait in their dead-letter queue (their optimizations "
            "show FAILED once every chunk settled): read the runner's logs, fix, then `backtest replay`.",
        )
        alarm(
            "OptimizationBacklogOld",
            queues.optimizations.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum"),
            BACKLOG_AGE_SECONDS,
            "An optimization chunk has waited over an hour: the chunks' concurrency is saturated, or the runner is "
            "throttled, failing or not consuming.",
        )
        alarm(
            "RunnerErrors",
            functions.runner.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
            1,
            f"{RUN_BACKTEST.name} crashed or timed out (strategy faults do not count: they end the job "
            "FAILED without an invocation error).",
            comparison=at_least_one,
        )
        alarm(
            "ApiServerErrors",
            api.rest_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            1,
            "The API answered 5XX: every caller mistake is a 4XX by design, so a 5XX is a fault to look at.",
            comparison=at_least_one,
        )
        alarm(
            "ApiLatencyHigh",
            api.rest_api.metric_latency(period=FIVE_MINUTES, statistic="p95"),
            API_LATENCY_P95_MS,
            f"API p95 latency above {API_LATENCY_P95_MS} ms for 15 minutes.",
            periods=3,
        )
        alarm(
            "CallersThrottled",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="SubmissionsThrottled",
                dimensions_map={"service": SERVICE_NAME},
                period=FIVE_MINUTES,
                statistic="Sum",
            ),
            THROTTLED_SUBMISSIONS_PER_5_MINUTES,
            f"Over {THROTTLED_SUBMISSIONS_PER_5_MINUTES} submissions in 5 minutes were refused with 429 because "
            "their caller had MAX_ACTIVE_JOBS jobs queued or running: a caller floods the service, or the limit "
            "is too low for real use (the submit function's logs name the owner).",
        )
        for function in functions.all:
            alarm(
                f"{function.node.id}Throttles",
                function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                1,
                f"{function.node.id} was throttled (concurrency limit reached).",
                comparison=at_least_one,
            )

        self.dashboard = self._dashboard(config, api, functions, queues)

    def _dashboard(
        self, config: StageConfig, api: Api, functions: Functions, queues: JobQueues
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=config.resource_prefix,
            default_interval=Duration.hours(6),
        )
        rest = api.rest_api
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=4)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    rest.metric_count(statistic="Sum"),
                    rest.metric_client_error(statistic="Sum"),
                    rest.metric_server_error(statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[rest.metric_latency(statistic=stat) for stat in ("p50", "p95", "p99")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations",
                left=[f.metric_invocations(statistic="Sum", label=f.node.id) for f in functions.all],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Errors and throttles",
                left=[f.metric_errors(statistic="Sum", label=f"{f.node.id} errors") for f in functions.all],
                right=[f.metric_throttles(statistic="Sum", label=f"{f.node.id} throttles") for f in functions.all],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Duration p95 (ms)",
                left=[f.metric_duration(statistic="p95", label=f.node.id) for f in functions.all],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs queue",
                left=[
                    queues.jobs.metric_approximate_number_of_messages_visible(label="waiting"),
                    queues.jobs.metric_approximate_number_of_messages_not_visible(label="running"),
                    queues.dead_letter.metric_approximate_number_of_messages_visible(label="dead-lettered"),
                ],
                right=[queues.jobs.metric_approximate_age_of_oldest_message(label="oldest (s)")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Optimization chunks queue",
                left=[
                    queues.optimizations.metric_approximate_number_of_messages_visible(label="waiting"),
                    queues.optimizations.metric_approximate_number_of_messages_not_visible(label="running"),
                    queues.optimization_dead_letter.metric_approximate_number_of_messages_visible(
                        label="dead-lettered"
                    ),
                ],
                right=[queues.optimizations.metric_approximate_age_of_oldest_message(label="oldest (s)")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Service metrics (powertools)",
                left=[
                    cloudwatch.MathExpression(
                        expression=f"SEARCH('{{{METRICS_NAMESPACE},{dimensions}}}', 'Sum', 300)",
                        label="",
                        period=FIVE_MINUTES,
                    )
                    # Every service metric, and JobsFailed by error type (observability.count_failure).
                    for dimensions in ("service", "service,error_type")
                ],
                width=12,
            ),
        )
        return dashboard
