-- The OrangeScrum app's own tables, with the app's table and column names, reduced to what
-- the simulated activity fills and the marts need (orangescrum/core/appdb/__init__.py lists
-- what is kept and what is left out). Every statement is idempotent: it runs at every
-- `orangescrum appdb start` and before every `orangescrum simulate app-db`.
-- All times are UTC (the connection sets time_zone = '+00:00'). No foreign keys: the app
-- has none either, and a change-data-capture reader must not depend on them.

CREATE TABLE IF NOT EXISTS companies (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    uniq_id VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(100) NOT NULL,
    created DATETIME NOT NULL,
    modified DATETIME NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- istype: 2 internal user, 3 external user (the app's 1, super admin, is not simulated).
CREATE TABLE IF NOT EXISTS users (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    uniq_id VARCHAR(64) NOT NULL UNIQUE,
    email VARCHAR(100) NOT NULL,
    name VARCHAR(100) NOT NULL,
    last_name VARCHAR(100) NOT NULL DEFAULT '',
    istype TINYINT NOT NULL DEFAULT 3,
    timezone VARCHAR(64) NOT NULL DEFAULT 'UTC',
    isactive TINYINT NOT NULL DEFAULT 1,
    dt_created DATETIME NOT NULL,
    dt_updated DATETIME NULL,
    dt_last_login DATETIME NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- user_type: 1 owner, 2 admin, 3 member; is_active 0: disabled in the company.
CREATE TABLE IF NOT EXISTS company_users (
    company_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    user_type TINYINT NOT NULL,
    is_active TINYINT NOT NULL DEFAULT 1,
    created DATETIME NOT NULL,
    modified DATETIME NOT NULL,
    PRIMARY KEY (company_id, user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- isactive: 1 active, 0 archived.
CREATE TABLE IF NOT EXISTS projects (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    uniq_id VARCHAR(64) NOT NULL UNIQUE,
    company_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    name VARCHAR(100) NOT NULL,
    short_name VARCHAR(20) NOT NULL,
    project_type VARCHAR(32) NOT NULL,
    start_date DATE NULL,
    end_date DATE NULL,
    estimated_hours DECIMAL(10, 2) NULL,
    isactive TINYINT NOT NULL DEFAULT 1,
    dt_created DATETIME NOT NULL,
    dt_updated DATETIME NOT NULL,
    KEY projects_company (company_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS project_users (
    project_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    company_id INT UNSIGNED NOT NULL,
    dt_visited DATETIME NOT NULL,
    PRIMARY KEY (project_id, user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Tasks (istype 1) and their replies, i.e. comments (istype 2), in one table as in the app.
-- legend: 1 New, 2 Opened, 3 Closed, 4 Start, 5 Resolved, 6 Modified. isactive 0: deleted.
-- dt_created: the last activity on the task (the app bumps it); actual_dt_created: creation.
-- priority: 0 high, 1 medium, 2 low. A reply shares its task's project_id and case_no.
CREATE TABLE IF NOT EXISTS easycases (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    uniq_id VARCHAR(64) NOT NULL UNIQUE,
    case_no INT UNSIGNED NOT NULL,
    company_id INT UNSIGNED NOT NULL,
    project_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    updated_by INT UNSIGNED NULL,
    type_id TINYINT NULL,
    priority TINYINT NULL,
    title VARCHAR(255) NOT NULL DEFAULT '',
    message TEXT NULL,
    estimated_hours DECIMAL(10, 2) NULL,
    story_point SMALLINT NULL,
    assign_to INT UNSIGNED NULL,
    due_date DATE NULL,
    istype TINYINT NOT NULL,
    legend TINYINT NOT NULL,
    isactive TINYINT NOT NULL DEFAULT 1,
    dt_created DATETIME NOT NULL,
    actual_dt_created DATETIME NOT NULL,
    KEY easycases_project_case (project_id, case_no)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The app's activity log. type, as the app numbers it: 1 New, 2 Opened, 3 Closed, 4 Start,
-- 5 Resolve, 7 Comments, 8 Deleted, 10 Modified. comment_id: the reply's easycases id, or 0.
CREATE TABLE IF NOT EXISTS case_activities (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    easycase_id BIGINT UNSIGNED NOT NULL,
    comment_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    case_no INT UNSIGNED NOT NULL,
    project_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    type TINYINT NOT NULL,
    isactive TINYINT NOT NULL DEFAULT 1,
    dt_created DATETIME NOT NULL,
    KEY case_activities_case (easycase_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- total_hours holds seconds. approval_status (not the app's): pending, approved or rejected;
-- approver_id: who decided. is_from_timer: 1 for a stopped timer, 0 for a manual entry.
CREATE TABLE IF NOT EXISTS log_times (
    log_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    user_id INT UNSIGNED NOT NULL,
    project_id INT UNSIGNED NOT NULL,
    task_id BIGINT UNSIGNED NOT NULL,
    task_date DATE NOT NULL,
    start_datetime DATETIME NOT NULL,
    end_datetime DATETIME NOT NULL,
    total_hours INT UNSIGNED NOT NULL,
    is_billable TINYINT NOT NULL,
    is_from_timer TINYINT NOT NULL,
    approval_status VARCHAR(16) NOT NULL DEFAULT 'pending',
    approver_id INT UNSIGNED NULL,
    created DATETIME NOT NULL,
    KEY log_times_task (task_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS milestones (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    uniq_id VARCHAR(64) NOT NULL UNIQUE,
    project_id INT UNSIGNED NOT NULL,
    company_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    title VARCHAR(255) NOT NULL,
    start_date DATE NULL,
    end_date DATE NULL,
    isactive TINYINT NOT NULL DEFAULT 1,
    created DATETIME NOT NULL,
    modified DATETIME NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A task sits in at most one milestone.
CREATE TABLE IF NOT EXISTS easycase_milestones (
    easycase_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    milestone_id INT UNSIGNED NOT NULL,
    project_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    created DATETIME NOT NULL,
    KEY easycase_milestones_milestone (milestone_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- file_size in kB, as the app keeps it.
CREATE TABLE IF NOT EXISTS case_files (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    user_id INT UNSIGNED NOT NULL,
    project_id INT UNSIGNED NOT NULL,
    company_id INT UNSIGNED NOT NULL,
    easycase_id BIGINT UNSIGNED NOT NULL,
    comment_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    file VARCHAR(255) NOT NULL,
    display_name VARCHAR(255) NULL,
    file_size DECIMAL(10, 1) NOT NULL,
    isactive TINYINT NOT NULL DEFAULT 1,
    KEY case_files_case (easycase_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Not an app table: which simulated history this database holds and how far it got, so a
-- re-run resumes (or does nothing) instead of replaying, and a different history is refused.
CREATE TABLE IF NOT EXISTS orangescrum_simulation (
    id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    history VARCHAR(255) NOT NULL,
    applied_events BIGINT UNSIGNED NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
