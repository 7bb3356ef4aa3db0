{#
    E-mail addresses and names never reach the marts in clear (the lake keeps the raw
    payload). Staging replaces them: an e-mail becomes a salted SHA-256 (equal addresses
    still join and count distinct), a name becomes its initials (enough for a label).

    The salt comes from ORANGESCRUM_PII_SALT. Without it a hash is a plain SHA-256, which a
    dictionary of addresses reverses, so the prod target refuses to build without one. The
    salt is part of the compiled SQL: keep target/ and the warehouse's query history as
    private as the lake.
#}

{% macro pii_salt() %}
    {%- set salt = env_var('ORANGESCRUM_PII_SALT', '') -%}
    {%- if execute and salt == '' and target.name == 'prod' -%}
        {{ exceptions.raise_compiler_error(
            "ORANGESCRUM_PII_SALT is empty: the prod target hashes e-mail addresses with a "
            ~ "secret salt. Set it (a long random string, kept like a password) and build again."
        ) }}
    {%- endif -%}
    {%- if "'" in salt or "\\" in salt -%}
        {{ exceptions.raise_compiler_error(
            "ORANGESCRUM_PII_SALT contains a quote or a backslash: use letters, digits, - or _."
        ) }}
    {%- endif -%}
    {{ return(salt) }}
{% endmacro %}


{#- The salted SHA-256 of a normalised (trimmed, lower-case) e-mail, as 64 hex digits. -#}
{% macro hash_email(column) %}
    {{ return(adapter.dispatch('hash_email', 'orangescrum')(column)) }}
{% endmacro %}

{% macro default__hash_email(column) -%}
    sha256('{{ orangescrum.pii_salt() }}' || lower(trim({{ column }})))
{%- endmacro %}

{% macro bigquery__hash_email(column) -%}
    to_hex(sha256(concat('{{ orangescrum.pii_salt() }}', lower(trim({{ column }})))))
{%- endmacro %}


{#- "Carol Danvers" -> "C. D."; a one-word name -> "C."; null stays null. -#}
{% macro name_initials(column) -%}
    case
        when strpos(trim({{ column }}), ' ') > 0
            then upper(left(trim({{ column }}), 1)) || '. '
            || upper(left(regexp_extract(trim({{ column }}), '[^ ]+$'), 1)) || '.'
        else upper(left(trim({{ column }}), 1)) || '.'
    end
{%- endmacro %}
