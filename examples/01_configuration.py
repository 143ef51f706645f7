"""SPEC §1: `CacheConfig`, read from keyword arguments, the environment, `.env` and a file.

Run it bare (the in-memory default), then on Redis with the examples' config file:

    python examples/01_configuration.py
    CACHEMESH_CONFIG=examples/redis.toml python examples/01_configuration.py
"""

from __future__ import annotations

from cachemesh import CacheConfig, ConfigError

# No argument: every setting comes from the environment, .env, then the config file
# (CACHEMESH_CONFIG, ./cachemesh.toml or [tool.cachemesh]), then the defaults of SPEC §1.
config = CacheConfig()
print(f"config file: {config.config_file or 'none (the in-memory default)'}")
print(f"backend: {config.CACHE_BACKEND}")
print(f"redis: {config.REDIS_HOST}:{config.REDIS_PORT}/{config.REDIS_DB}")
print(f"key prefix: {config.CACHE_KEY_PREFIX}, version: {config.CACHE_VERSION}")
print(f"default timeout: {config.CACHE_DEFAULT_TIMEOUT} s")
print(f"celery: serializer={config.CELERY_TASK_SERIALIZER} timezone={config.CELERY_TIMEZONE}")

# Keyword arguments beat every other source: the guide's .env sets Asia/Shanghai.
shanghai = CacheConfig(CELERY_TIMEZONE="Asia/Shanghai", CACHE_DEFAULT_TIMEOUT=600)
print(f"keyword arguments win: timezone={shanghai.CELERY_TIMEZONE}")

# A config is frozen (shared safely between threads): derive a changed copy instead.
next_version = config.model_copy(update={"CACHE_VERSION": config.CACHE_VERSION + 1})
print(f"bumped version: {next_version.CACHE_VERSION}")

# REDIS_PASSWORD is a secret: never in a repr, a log line or an error.
secret = CacheConfig(REDIS_PASSWORD="s3cret-password")
assert "s3cret-password" not in repr(secret)
assert secret.REDIS_PASSWORD is not None
print(f"password in repr: {'s3cret-password' in repr(secret)}, shown as {secret.REDIS_PASSWORD}")

# A typo fails at once, with a did-you-mean, instead of being silently ignored.
try:
    CacheConfig(CACHE_KEY_PREFX="shop")
except ConfigError as exc:
    print(f"typo caught: {exc}")
