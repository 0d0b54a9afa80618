"""Build-time tools: what generates committed artifacts (the OpenAPI document). Never in the Lambda layer."""
