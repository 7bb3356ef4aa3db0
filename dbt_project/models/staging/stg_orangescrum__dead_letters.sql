with

source as (

    select * from {{ source('orangescrum', 'raw_dead_letters') }}

),

ranked_deliveries as (

    -- A replayed micro-batch may dead-letter the same Kafka record again: keep the first.
    select
        *,
        row_number() over (
            partition by kafka_topic, kafka_partition, kafka_offset
            order by ingested_at asc
        ) as delivery_rank
    from source

),

first_deliveries as (

    select * from ranked_deliveries
    where delivery_rank = 1

),

renamed as (

    select

        ----------  ids
        {{ dbt.concat([
            'kafka_topic',
            "'/'",
            'cast(kafka_partition as ' ~ dbt.type_string() ~ ')',
            "'/'",
            'cast(kafka_offset as ' ~ dbt.type_string() ~ ')',
        ]) }} as dead_letter_id,
        event_id,
        cast(schema_id as {{ dbt.type_bigint() }}) as schema_id,

        ----------  strings
        reason as dead_letter_reason,
        error_detail,
        kafka_topic,

        ----------  numerics
        cast(kafka_partition as {{ dbt.type_bigint() }}) as kafka_partition,
        cast(kafka_offset as {{ dbt.type_bigint() }}) as kafka_offset,
        cast(
            {{ orangescrum.byte_length('raw_value') }} as {{ dbt.type_bigint() }}
        ) as raw_value_size_bytes,

        ----------  dates
        event_date as lake_partition_date,

        ----------  timestamps
        cast(kafka_timestamp as {{ dbt.type_timestamp() }}) as kafka_message_at,
        cast(ingested_at as {{ dbt.type_timestamp() }}) as dead_lettered_at

    from first_deliveries

)

select * from renamed
