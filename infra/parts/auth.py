"""Cognito: the user pool the API authorizes against (created, or an existing one) and the app client
the frontend signs in with (hosted UI with the authorization-code flow, SRP or USER_PASSWORD_AUTH)."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import StageConfig
from infra.nag import acknowledge

MFA = {"off": cognito.Mfa.OFF, "optional": cognito.Mfa.OPTIONAL, "required": cognito.Mfa.REQUIRED}
# Cognito threat protection for the standard (username/password, SRP) sign-in: audit only logs risk,
# enforced also blocks or challenges risky sign-ins and compromised credentials.
THREAT_PROTECTION = {
    "off": None,
    "audit": cognito.StandardThreatProtectionMode.AUDIT_ONLY,
    "enforced": cognito.StandardThreatProtectionMode.FULL_FUNCTION,
}


class Auth(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.domain: cognito.UserPoolDomain | None = None
        if config.user_pool_id:
            # An existing pool (the frontend's): the API trusts its ID tokens; we only add a client.
            self.user_pool: cognito.IUserPool = cognito.UserPool.from_user_pool_id(
                self, "UserPool", config.user_pool_id
            )
        else:
            self.user_pool = self._create_pool(config)

        web_origins = [origin for origin in config.allowed_origins if origin != "*"]
        self.client = self.user_pool.add_client(
            "WebClient",
            user_pool_client_name=f"{config.resource_prefix}-web",
            generate_secret=False,  # a browser app cannot keep a secret
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[f"{origin}/" for origin in web_origins] or None,
                logout_urls=[f"{origin}/" for origin in web_origins] or None,
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )

    def _create_pool(self, config: StageConfig) -> cognito.UserPool:
        pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=config.resource_prefix,
            # Accounts are created by an admin (docs/DEPLOY.md): open sign-up would let anyone queue
            # compute on this account.
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=MFA[config.mfa],
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False) if config.mfa != "off" else None,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Threat protection (compromised credentials, adaptive authentication) needs the Plus plan.
            feature_plan=cognito.FeaturePlan.ESSENTIALS
            if config.threat_protection == "off"
            else cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=THREAT_PROTECTION[config.threat_protection],
            deletion_protection=config.deletion_protection,
            removal_policy=config.removal_policy,
        )
        if config.mfa != "required":
            acknowledge(
                pool,
                "AwsSolutions-COG2",
                f"MFA is {config.mfa} (context mfa; `-c mfa=required` requires it): users are invited by an "
                "admin, the data is backtest results of their own strategies, and the documented scripted "
                "sign-in (USER_PASSWORD_AUTH for curl) then needs no MFA challenge answered.",
            )
        if config.threat_protection == "off":
            acknowledge(
                pool,
                "AwsSolutions-COG8",
                "The Essentials plan is enough for invite-only users of a backtesting tool; Plus (threat "
                "protection: `-c threatProtection=audit|enforced`) costs about 3x per monthly active user.",
            )
        # Hosted UI: https://<prefix>.auth.<region>.amazoncognito.com (the prefix must be unique per region).
        self.domain = pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=Fn.join("-", ["backtest", config.stage, Aws.ACCOUNT_ID])
            ),
        )
        return pool
