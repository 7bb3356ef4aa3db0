"""The OrangeScrum app database: translation of events, the local MariaDB, simulate app-db."""
