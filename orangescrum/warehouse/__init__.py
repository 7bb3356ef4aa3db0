"""The warehouse stage: dbt runs, the raw tables over the lake, row counts of the marts."""
