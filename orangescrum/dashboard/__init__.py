"""The local activity dashboard (exposure `local_activity_dashboard`) on the DuckDB marts.

`queries` holds the SQL (connection + filters -> DataFrame, testable without Streamlit); `app`
is the Streamlit script that `orangescrum dashboard` serves.
"""
