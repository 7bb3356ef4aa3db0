with

source as (

    select * from {{ source('orangescrum', 'raw_pipeline_metrics') }}

),

ranked_attempts as (

    -- A micro-batch replayed after a crash reports its metrics again: keep the last
    -- attempt. Batch ids restart at 0 in every stream (the event stream, the change stream)
    -- and with every new checkpoint: the landing id tells them apart.
    select
        *,
        row_number() over (
            partition by landing_id, batch_id
            order by finished_at desc
        ) as attempt_rank
    from source

),

last_attempts as (

    select * from ranked_attempts
    where attempt_rank = 1

),

renamed as (

    select

        ----------  ids
        landing_id,
        cast(batch_id as {{ dbt.type_bigint() }}) as batch_id,

        ----------  strings
        end_offsets as end_offsets_json,

        ----------  numerics
        cast(duration_seconds as {{ orangescrum.double_type() }}) as duration_seconds,
        cast(rows_in as {{ dbt.type_bigint() }}) as input_row_count,
        cast(rows_landed as {{ dbt.type_bigint() }}) as landed_row_count,
        cast(
            rows_dead_lettered as {{ dbt.type_bigint() }}
        ) as dead_lettered_row_count,
        cast(lag_total as {{ dbt.type_bigint() }}) as consumer_lag_messages,

        ----------  timestamps
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(finished_at as {{ dbt.type_timestamp() }}) as finished_at

    from last_attempts

)

select * from renamed
