"""OrangeScrum's own database as a source: a MariaDB shaped like the app's, filled as the app would.

Modules, by job: ``server`` (the local MariaDB, a managed process: datadir under
<data_dir>/appdb, 127.0.0.1 only, binlog in ROW format for change-data capture),
``connection`` (the application user's connection, its password, the schema), ``translate``
(one ActivityEvent -> the app's SQL, pure), ``apply`` (a history into the database, in order,
in transactions, resumable). ``schema.sql`` holds the DDL, ``debezium-mariadb.json`` the
Debezium connector's config (orangescrum/core/connect.py fills it in and runs it). It sits in
the base layer because the broker does too, and because it needs nothing but the event
contract; the CLI feeds it the simulator's events.

The tables and columns are the app's (OrangeScrum's database.sql), reduced to what the simulated
activity fills and the marts need:

- companies: id, uniq_id, name, created, modified. Left out: everything else (subscription,
  billing, contact).
- users: id, uniq_id, email, name, last_name, istype (2 internal, 3 external), isactive,
  dt_created, dt_updated, dt_last_login. Not the app's: timezone (a name; the app keeps
  timezone_id). Left out: password, photo, timezone_id, dt_last_logout, notification,
  verification and settings columns.
- company_users: company_id, user_id, user_type (1 owner, 2 admin, 3 member), is_active,
  created, modified. Left out: id (the key is company_id + user_id), everything else.
- projects: id, uniq_id, company_id, user_id, name, short_name, isactive (0 archived),
  start_date, end_date, estimated_hours, dt_created, dt_updated. Not the app's: project_type.
  Left out: everything else.
- project_users: project_id, user_id, company_id, dt_visited. Left out: id (the key is
  project_id + user_id), everything else.
- easycases: id, uniq_id, case_no, company_id, project_id, user_id, updated_by, type_id,
  priority, title, message, estimated_hours, story_point, assign_to, due_date, istype (1 task, 2
  reply), legend, isactive (0 deleted), dt_created (last activity), actual_dt_created. Left out:
  case_count, hours, completed_task, gantt_start_date, client_status, format, status,
  is_recurring, reply_type, depends, children, temp_hours, temp_est_hours, seq_id,
  parent_task_id, custom_status_id, thread_count, git and integration flags.
- case_activities: id, easycase_id, comment_id, case_no, project_id, user_id, type (the app's
  codes), isactive, dt_created.
- log_times: log_id, user_id, project_id, task_id, task_date, start_datetime, end_datetime,
  total_hours (seconds), is_billable, is_from_timer, approver_id, created. Not the app's:
  approval_status (pending/approved/rejected; the app's pending_status codes are not
  documented). Left out: start_time, end_time, description, task_status, timesheet_flag, ip,
  break_time, pending_status.
- milestones: id, uniq_id, project_id, company_id, user_id, title, start_date, end_date,
  isactive, created, modified. Left out: everything else.
- easycase_milestones: easycase_id, milestone_id, project_id, user_id, created. Left out: id (a
  task sits in one milestone: the key is easycase_id), m_order, id_seq.
- case_files: id, user_id, project_id, company_id, easycase_id, comment_id, file, display_name,
  file_size (kB), isactive. Left out: upload_name, thumb, count, downloadurl.

Columns were checked against OrangeScrum's public database.sql for users, easycases,
case_activities, case_files, easycase_milestones and log_times; for companies,
company_users, projects, project_users and milestones they are the app's best-known columns,
and "everything else" was not enumerated.

Left out entirely: the app's lookup and settings tables (types, timezones, user notifications,
custom statuses, invoices, subscriptions, sessions). Keys are the simulator's ids (deterministic)
instead of auto-increment, so the same seed and start date give the same rows; the marker table
``orangescrum_simulation`` (not the app's) records which history the database holds.
"""
