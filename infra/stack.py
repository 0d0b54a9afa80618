"""The backtest service stack: composes one construct per concern and publishes the outputs ops and
the replay CLI read (stable keys, named in `topology.Output`: ApiUrl, UserPoolId, JobsQueueUrl, ...)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, Stack, Tags
from constructs import Construct

from backtest_service.topology import SERVICE_NAME, Output
from infra.config import StageConfig
from infra.parts.api import Api
from infra.parts.auth import Auth
from infra.parts.encryption import Encryption, EncryptLogGroups
from infra.parts.functions import Functions
from infra.parts.monitoring import Monitoring
from infra.parts.queues import JobQueues
from infra.parts.storage import Storage
from infra.parts.waf import Waf


class BacktestServiceStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"{SERVICE_NAME} ({config.stage})", **kwargs)
        self.config = config
        Tags.of(self).add("service", SERVICE_NAME)
        Tags.of(self).add("stage", config.stage)

        # Security options (infra/config.py): a customer-managed key (kms), a WAF web ACL on the stage (waf).
        self.encryption = Encryption(self, "Encryption", config=config) if config.kms else None
        kms_key = self.encryption.key if self.encryption else None
        self.storage = Storage(self, "Storage", config=config, key=kms_key)
        self.queues = JobQueues(self, "Queues", config=config, key=kms_key)
        self.functions = Functions(self, "Functions", config=config, storage=self.storage, queues=self.queues)
        self.auth = Auth(self, "Auth", config=config) if config.auth_mode == "cognito" else None
        self.api = Api(self, "Api", config=config, functions=self.functions, auth=self.auth)
        self.waf = Waf(self, "Waf", config=config, api=self.api) if config.waf else None
        self.monitoring = Monitoring(
            self, "Monitoring", config=config, api=self.api, functions=self.functions, queues=self.queues, key=kms_key
        )
        if self.encryption is not None:
            # The functions that touch the queue and the tables use the key; symbols touches no data.
            f = self.functions
            self.encryption.grant_data_use(f.submit, f.status, f.runner)
            self.encryption.grant_data_use(f.datasets, f.validate_dataset)  # the datasets table
            Aspects.of(self).add(EncryptLogGroups(self.encryption.key))

        outputs = {
            Output.API_URL: self.api.rest_api.url,
            Output.AUTH_MODE: config.auth_mode,
            Output.JOBS_QUEUE_URL: self.queues.jobs.queue_url,
            Output.DEAD_LETTER_QUEUE_URL: self.queues.dead_letter.queue_url,
            Output.RESULTS_BUCKET_NAME: self.storage.results_bucket.bucket_name,
            Output.JOBS_TABLE_NAME: self.storage.jobs_table.table_name,
            Output.DATASETS_TABLE_NAME: self.storage.datasets_table.table_name,
            Output.IDEMPOTENCY_TABLE_NAME: self.storage.idempotency_table.table_name,
            Output.ALARM_TOPIC_ARN: self.monitoring.topic.topic_arn,
            Output.DASHBOARD_NAME: self.monitoring.dashboard.dashboard_name,
            # Parameter optimizations (issue 14): `backtest replay` reads these too.
            Output.OPTIMIZATIONS_TABLE_NAME: self.storage.optimizations_table.table_name,
            Output.OPTIMIZATION_QUEUE_URL: self.queues.optimizations.queue_url,
            Output.OPTIMIZATION_DEAD_LETTER_QUEUE_URL: self.queues.optimization_dead_letter.queue_url,
        }
        if self.auth is not None:
            outputs[Output.USER_POOL_ID] = self.auth.user_pool.user_pool_id
            outputs[Output.USER_POOL_CLIENT_ID] = self.auth.client.user_pool_client_id
            if self.auth.domain is not None:
                outputs[Output.HOSTED_UI_URL] = self.auth.domain.base_url()
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
