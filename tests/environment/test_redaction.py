"""Redaction against a table of secret-looking variables, URLs and command lines.

Every case asserts that the secret text appears *nowhere* in the JSON of the result, not
only that one value compares equal: a credential must never survive into a manifest.
"""

from __future__ import annotations

import json

import pytest

from mlflow_provenance.environment.redaction import (
    REDACTED,
    is_secret_name,
    redact_argv,
    redact_environment,
    redact_value,
    strip_url_credentials,
)

# --- variables whose *name* says they hold a secret ---------------------------------------------

SECRET_NAMED = [
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("AWS_ACCESS_KEY_ID", "plain-looking-id-0001"),
    ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEBYaDH-session-0002"),
    ("GITHUB_TOKEN", "not-a-known-format-0003"),
    ("GH_TOKEN", "value-0004"),
    ("db_password", "hunter2-0005"),
    ("Db_PassWord", "hunter2-0006"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/home/me/.config/gcloud/sa-0007.json"),
    ("HF_TOKEN", "value-0008"),
    ("HUGGING_FACE_HUB_TOKEN", "value-0009"),
    ("MLFLOW_TRACKING_PASSWORD", "value-0010"),
    ("MLFLOW_TRACKING_TOKEN", "value-0011"),
    ("OPENAI_API_KEY", "value-0012"),
    ("api_key", "value-0013"),
    ("WANDB_API_KEY", "value-0014"),
    ("NPM_TOKEN", "value-0015"),
    ("DOCKER_PASSWORD", "value-0016"),
    ("slack_bot_token", "value-0017"),
    ("my_Secret", "value-0018"),
    ("DJANGO_SECRET_KEY", "value-0019"),
    ("PGPASSWORD", "value-0020"),
    ("SSH_PRIVATE_KEY", "value-0021"),
    ("AZURE_CLIENT_SECRET", "value-0022"),
    ("KAGGLE_KEY", "value-0023"),
    ("CREDENTIALS", "value-0024"),
    ("gcp_credential_json", '{"private_key_id": "value-0025"}'),
    ("BASIC_AUTH", "admin:value-0026"),
    ("HTTP_PASSWD", "value-0027"),
    ("GPG_PASSPHRASE", "value-0028"),
    ("SESSION_COOKIE", "value-0029"),
    ("SecretToken", "value-0030"),
]


@pytest.mark.parametrize(("name", "value"), SECRET_NAMED, ids=[n for n, _ in SECRET_NAMED])
def test_secret_named_variable_is_redacted(name, value):
    environ = {"PATH": "/usr/bin", name: value}
    result = redact_environment(environ)
    assert result[name] == REDACTED
    assert result["PATH"] == "/usr/bin"
    assert set(result) == {"PATH", name}
    assert value not in json.dumps(result)
    assert is_secret_name(name)


# --- harmless variables: kept verbatim ------------------------------------------------------------

HARMLESS = [
    ("PATH", "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/root"),
    ("LANG", "C.UTF-8"),
    ("PWD", "/work/experiments/resnet"),
    ("CUDA_VISIBLE_DEVICES", "0,1"),
    ("PYTHONHASHSEED", "0"),
    ("SHELL", "/bin/bash"),
    ("USER", "alice"),
    ("LD_LIBRARY_PATH", "/usr/local/cuda/lib64"),
    ("OMP_NUM_THREADS", "8"),
    ("HOSTNAME", "gpu-node-17"),
    ("VIRTUAL_ENV", "/opt/venv"),
    ("NCCL_DEBUG", "INFO"),
    ("MLFLOW_EXPERIMENT_NAME", "resnet-sweep"),
    ("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000"),
    ("PIP_INDEX_URL", "https://pypi.org/simple"),
    ("HTTP_PROXY", "http://proxy.corp:3128"),
    ("EMAIL", "alice@example.com"),
    ("GIT_REMOTE", "git@github.com:org/repo.git"),
    ("JAVA_OPTS", "-Xmx4g -Dfile.encoding=UTF-8"),
]


@pytest.mark.parametrize(("name", "value"), HARMLESS, ids=[n for n, _ in HARMLESS])
def test_harmless_variable_is_kept_verbatim(name, value):
    assert not is_secret_name(name)
    assert redact_environment({name: value}) == {name: value}
    assert redact_value(value) == value


def test_whole_environment_sorted_and_input_untouched():
    environ = dict(HARMLESS) | dict(SECRET_NAMED)
    before = dict(environ)
    result = redact_environment(environ)
    assert environ == before  # not modified in place
    assert list(result) == sorted(environ)
    dumped = json.dumps(result)
    for name, value in SECRET_NAMED:
        assert value not in dumped, name
        assert result[name] == REDACTED
    for name, value in HARMLESS:
        assert result[name] == value


# --- credentials inside URLs in harmless-named variables ------------------------------------------

# (name, value, secrets that must vanish, parts that must survive)
URL_CREDENTIALS = [
    ("DATABASE_URL", "postgresql://dbuser-q1:pw-db-7Hq@db.example.com:5432/app",
     ["pw-db-7Hq", "dbuser-q1"], ["postgresql://", "db.example.com:5432/app"]),
    ("DATABASE_URL_SHORT", "postgresql://u:pw-short-1@h/db", ["pw-short-1", "u:"], ["postgresql://", "@h/db"]),
    ("MLFLOW_TRACKING_URI", "https://mluser-q2:tok-mlf-81x@mlflow.example.com/",
     ["tok-mlf-81x", "mluser-q2"], ["https://", "mlflow.example.com/"]),
    ("PIP_INDEX_URL", "https://__token__:pypi-AgEIcHlwaS5vcmcq3@pypi.example.com/simple/",
     ["pypi-AgEIcHlwaS5vcmcq3", "__token__"], ["pypi.example.com/simple/"]),
    ("PIP_EXTRA_INDEX_URL", "https://builduser-q4:idx-pass-55@nexus.corp/repository/pypi/simple",
     ["idx-pass-55", "builduser-q4"], ["nexus.corp/repository/pypi/simple"]),
    ("UV_INDEX_URL", "https://oauth2accesstoken:ya29-uv-66@europe-python.pkg.dev/proj/repo/simple/",
     ["ya29-uv-66"], ["europe-python.pkg.dev/proj/repo/simple/"]),
    ("REDIS_URL", "redis://:redis-pw-9@cache.internal:6379/0", ["redis-pw-9"], ["redis://", "cache.internal:6379/0"]),
    ("CELERY_BROKER_URL", "amqp://rabbituser-q5:amqp-pw-3@rabbit:5672//",
     ["amqp-pw-3", "rabbituser-q5"], ["amqp://", "rabbit:5672//"]),
    ("HTTPS_PROXY", "http://proxyuser-q6:proxy-pw-4@proxy.corp:3128",
     ["proxy-pw-4", "proxyuser-q6"], ["proxy.corp:3128"]),
    ("SQLALCHEMY_DATABASE_URI", "mysql+pymysql://root:my-pw-5@db:3306/app", ["my-pw-5"], ["mysql+pymysql://", "db:3306/app"]),
    ("MONGO_URL", "mongodb+srv://admin:mongo-pw-6@cluster0.abcde.mongodb.net/test?retryWrites=true",
     ["mongo-pw-6"], ["cluster0.abcde.mongodb.net/test?retryWrites=true"]),
    ("REPO", "https://tokenonly-q7x9@github.com/org/repo.git", ["tokenonly-q7x9"], ["github.com/org/repo.git"]),
    ("TWO_URLS", "a=https://u1:p1-first-xx@h1.example/x b=ftp://u2:p2-second-yy@h2.example/y",
     ["p1-first-xx", "p2-second-yy"], ["h1.example/x", "h2.example/y", "a=", " b="]),
    ("WEBHOOK", "https://hook.example.com/path?user=me", [], ["https://hook.example.com/path?user=me"]),
]


@pytest.mark.parametrize(("name", "value", "secrets", "survive"), URL_CREDENTIALS, ids=[c[0] for c in URL_CREDENTIALS])
def test_url_credentials_stripped_from_harmless_variable(name, value, secrets, survive):
    assert not is_secret_name(name)
    result = redact_environment({name: value})
    dumped = json.dumps(result)
    for secret in secrets:
        assert secret not in dumped, secret
    for part in survive:
        assert part in result[name], part
    if secrets:
        assert REDACTED in result[name]  # a reader can tell something was hidden


def test_strip_url_credentials_exact_forms():
    url = "https://user:tok@host.example/x"
    assert strip_url_credentials(url) == f"https://{REDACTED}@host.example/x"
    assert strip_url_credentials(url, None) == "https://host.example/x"
    assert strip_url_credentials("redis://:pw@host:6379/0", None) == "redis://host:6379/0"
    assert strip_url_credentials("no url here") == "no url here"
    assert strip_url_credentials("git@github.com:org/repo.git", None) == "git@github.com:org/repo.git"


@pytest.mark.parametrize("value", [
    "postgresql://user:p@ssw0rd-tail@db.example.com/app",
    "https://user:abc@def-leak@host.example/simple",
])
def test_password_with_unencoded_at_sign_never_survives(value):
    password = value.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
    tail = password.split("@", 1)[1]
    result = redact_environment({"DATABASE_URL": value})
    dumped = json.dumps(result)
    assert tail not in dumped
    assert password not in dumped


# --- well-known token formats in harmless-named variables -----------------------------------------

GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQ\n-----END RSA PRIVATE KEY-----\n"

TOKENS = [
    ("SOME_VAR", GHP, GHP),
    ("NOTE", "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("TEMP_ID", "ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    ("LLM_CONFIG", "sk-proj-abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
    ("HUB_STR", "hf_abcdefghijklmnopqrstuvwxyzABCD", "abcdefghijklmnopqrstuvwxyzABCD"),
    ("SLACK_HOOK_BOT", "xoxb-1234567890-abcdefghijKLMN", "1234567890-abcdefghijKLMN"),
    ("BEARER", JWT, "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("CERT_BUNDLE", PEM, "MIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQ"),
    ("PEM_PKCS8", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----",
     "MIIEvQIBADANBgkqhkiG9w0B"),
    ("SSH_THING", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAA"),
    ("FINE_GRAINED", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
     "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    ("GITLAB", "glpat-xYz123ABCdef456GHIjkl", "xYz123ABCdef456GHIjkl"),
    ("EXTRA_ARGS", f"--header 'Authorization: token {GHP}' --retries 3", GHP),
    ("CURL_CMD", f"curl -H 'Bearer {JWT}' https://api.example.com", JWT),
]


@pytest.mark.parametrize(("name", "value", "secret"), TOKENS, ids=[t[0] for t in TOKENS])
def test_known_token_format_redacted_in_harmless_variable(name, value, secret):
    assert not is_secret_name(name)
    result = redact_environment({name: value})
    assert result == {name: REDACTED}
    assert secret not in json.dumps(result)
    assert redact_value(value) == REDACTED


@pytest.mark.parametrize("value", [
    "ghp_short",  # too short to be a GitHub token
    "sk-1",
    "desk-lamp-with-a-long-name-0123456789",  # "sk-" inside a word
    "AKIA-not-an-access-key",
    "task-abcdefghijklmnopqrstuvwxyz",
    "-----BEGIN CERTIFICATE-----",
])
def test_lookalikes_are_not_token_formats(value):
    assert redact_value(value) == value


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "secret"), [
    ("key", True), ("Key", True), ("monkey_see", True), ("SECRET", True), ("x_secret_y", True),
    ("token", True), ("MyToken", True), ("password", True), ("PassWord", True), ("credential", True),
    ("Credentials", True), ("PATH", False), ("HOME", False), ("PWD", False), ("LANG", False),
    ("CUDA_VISIBLE_DEVICES", False), ("PYTHONHASHSEED", False), ("DATABASE_URL", False),
    ("MLFLOW_TRACKING_URI", False), ("TOKENIZERS_PARALLELISM", True),
])
def test_is_secret_name(name, secret):
    assert is_secret_name(name) is secret


# --- command lines --------------------------------------------------------------------------------


def test_argv_option_with_equals_redacted():
    out = redact_argv(["train.py", "--password=hunter2-argv", "--epochs=3"])
    assert out == ["train.py", f"--password={REDACTED}", "--epochs=3"]
    assert "hunter2-argv" not in json.dumps(out)


def test_argv_option_with_separate_value_redacted():
    out = redact_argv(["train.py", "--api-token", "tok-argv-77", "--lr", "0.1"])
    assert out == ["train.py", "--api-token", REDACTED, "--lr", "0.1"]
    assert "tok-argv-77" not in json.dumps(out)


@pytest.mark.parametrize(("option", "value"), [
    ("--secret-key", "sk-value-1"),
    ("--aws_secret_access_key", "sk-value-2"),
    ("--hf-token", "sk-value-3"),
    ("-password", "sk-value-4"),
    ("--DB-PASSWORD", "sk-value-5"),
    ("--credentials", "sk-value-6"),
])
def test_argv_secret_options_both_forms(option, value):
    for argv in ([option, value], [f"{option}={value}"]):
        out = redact_argv(["run.py", *argv, "--verbose"])
        assert value not in json.dumps(out), argv
        assert out[0] == "run.py" and out[-1] == "--verbose"
        assert REDACTED in " ".join(out)


def test_argv_url_option_value_keeps_host_and_path():
    out = redact_argv(["train.py", "--db-url", "postgresql://u:pw-argv-db@h/db"])
    assert out[:2] == ["train.py", "--db-url"]
    assert "pw-argv-db" not in json.dumps(out)
    assert out[2].startswith("postgresql://") and out[2].endswith("h/db")
    assert "u:" not in out[2]


def test_argv_url_option_with_equals():
    out = redact_argv(["--tracking-uri=https://alice-q8:pw-eq-33@mlflow.example.com/"])
    dumped = json.dumps(out)
    assert "pw-eq-33" not in dumped and "alice-q8" not in dumped
    assert out[0].startswith("--tracking-uri=https://") and out[0].endswith("mlflow.example.com/")


def test_argv_positional_url_with_credentials():
    out = redact_argv(["python", "fetch.py", "https://bob-q9:bobpw-9@data.example.com/x.csv"])
    assert out[:2] == ["python", "fetch.py"]
    dumped = json.dumps(out)
    assert "bobpw-9" not in dumped and "bob-q9" not in dumped
    assert out[2].endswith("data.example.com/x.csv")


def test_argv_token_in_harmless_option_value():
    out = redact_argv(["deploy.py", f"--header=Authorization: token {GHP}", "--name", GHP])
    assert GHP not in json.dumps(out)
    assert out[0] == "deploy.py" and out[2] == "--name"


def test_argv_harmless_unchanged():
    argv = ["train.py", "--lr", "0.001", "--epochs=10", "-v", "--data", "/data/imagenet",
            "--output-dir=/tmp/out", "--resume", "https://example.com/ckpt.pt", "-n", "4", "--", "extra"]
    assert redact_argv(argv) == argv


def test_argv_trailing_secret_option_without_value():
    assert redact_argv(["train.py", "--token"]) == ["train.py", "--token"]


def test_argv_accepts_any_iterable_and_does_not_mutate():
    argv = ["a.py", "--password", "pw-iter-1"]
    out = redact_argv(iter(argv))
    assert out == ["a.py", "--password", REDACTED]
    assert argv == ["a.py", "--password", "pw-iter-1"]


@pytest.mark.parametrize("name", ["MYSQL_PWD", "DB_PWD", "RABBITMQ_DEFAULT_PASS", "REDIS_PASS"])
def test_password_variables_without_the_word_password_are_redacted(name):
    assert redact_environment({name: "hunter2"}) == {name: REDACTED}


@pytest.mark.parametrize("name", ["PWD", "OLDPWD"])
def test_working_directories_are_not_passwords(name):
    assert redact_environment({name: "/home/user/project"}) == {name: "/home/user/project"}


def test_several_urls_in_one_value_are_each_stripped():
    out = redact_value("a=https://u:pw1@h1.example/x b=https://pw2@h2.example/y plain@mail.example")
    assert "pw1" not in out and "pw2" not in out
    assert "h1.example/x" in out and "h2.example/y" in out and "plain@mail.example" in out
