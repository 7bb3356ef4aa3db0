"""`orangescrum`: one command with a subcommand per operation of the platform.

Every setting comes from ORANGESCRUM_* environment variables (see .env.example); options here
only choose what to do, so the same command works locally and in production. One module per
command group; `app` assembles them, `common` holds what they share. Heavy libraries (Spark,
dbt, Airflow, Streamlit) are imported inside the commands, so `orangescrum --help` is instant.
"""

from orangescrum.cli.app import app, main

__all__ = ["app", "main"]
