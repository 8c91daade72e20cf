{#-
  Incremental build state (DECISIONLOG.md, "Incremental build").

  int_usage_events_rated stamps every row with the rating_run that rated it. Two things read
  "what is new" off that stamp:
    * the incremental aggregation (int_charge_event_totals_aggregated and
      int_charge_distinct_values_collected), against its own high-water mark;
    * the event-level tests, against the last *verified* build: a build whose every node
      succeeded, recorded by the on-run-end hook in <target schema>.valueverse_build_log. A build
      that fails leaves no record, so the next build tests the same rows again.
  A verification only counts for the same code_version (a hash of the dbt project and the
  dbt/engine versions that ingestion/billing/dbt_runner.py passes as a var): after a code change every test
  runs on every row once. A build without that var (dbt run by hand) neither uses nor records
  a verification: it tests every row.
-#}

{% macro build_log() -%}
  {{ target.schema }}.valueverse_build_log
{%- endmacro %}

{#- on-run-start: the log table exists before any test reads it. -#}
{% macro create_build_log() %}
  {% if execute %}{% do run_query('create schema if not exists ' ~ target.schema) %}{% endif %}
  create table if not exists {{ build_log() }} (
      invocation_id     varchar not null,
      finished_at       timestamp not null,
      code_version      varchar not null,
      catalog_version   integer,
      as_of             date not null,
      verified_through  bigint not null,     -- every rated row with rating_run <= this passed
      verified_landed_at timestamp,          -- the newest landed_at among them
      unit_tests_ran    boolean not null,      -- the unit tests passed for this code_version
      catalog_tests_ran boolean not null       -- the catalog tests passed for this catalog_version
  )
{% endmacro %}

{#- What ingestion/billing/dbt_runner.py may leave out of a build that still counts as whole (DECISIONLOG.md,
    "Skipped nodes"): the staging views and the seed when this code_version was verified on
    this warehouse (it created them; they read only raw tables, which are never dropped; every
    view downstream of a table is rebuilt, since PostgreSQL drops it with the table), the unit
    tests when they passed for this code_version, the catalog tests when they passed for this
    code_version and catalog_version. `fqn:*` (every node) is how dagster-dbt asks for the
    whole project, so a Dagster build of every asset is recorded too. -#}
{% macro skippable_selection() %}
  {{ return({
      'select': ['resource_type:test', 'resource_type:unit_test', 'config.materialized:table+',
                 'config.materialized:incremental+', 'fqn:*'],
      'exclude': ['test_type:unit', 'tag:catalog']}) }}
{% endmacro %}

{#- on-run-end: record the build as verified when it was a whole `dbt build` (no selection but
    the one above) in which every node succeeded. -#}
{% macro record_verified_build(results) %}
  {%- if not execute or flags.WHICH != 'build' or code_version() == 'unversioned' -%}
    select 1
  {%- else -%}
    {%- set args = invocation_args_dict -%}
    {%- set allowed = skippable_selection() -%}
    {%- set ns = namespace(ok=not args.get('selector'), unit=false, catalog=false, tests=0) -%}
    {%- for option in ['select', 'exclude'] -%}
      {%- set given = args.get(option) or [] -%}
      {%- set given = [given] if given is string else given -%}
      {%- for item in given -%}
        {%- if item not in allowed[option] -%}{%- set ns.ok = false -%}{%- endif -%}
      {%- endfor -%}
    {%- endfor -%}
    {%- for result in results -%}
      {%- if result.status not in ['success', 'pass'] -%}
        {%- set ns.ok = false -%}
      {%- endif -%}
      {%- if result.node.resource_type == 'unit_test' -%}
        {%- set ns.unit = true -%}
      {%- endif -%}
      {%- if result.node.resource_type == 'test' -%}
        {%- set ns.tests = ns.tests + 1 -%}
        {%- if 'catalog' in result.node.tags -%}{%- set ns.catalog = true -%}{%- endif -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if ns.ok and ns.tests > 0 -%}
      {%- set rated = ref('int_usage_events_rated') -%}
      insert into {{ build_log() }}
      select
          '{{ invocation_id }}',
          cast('{{ run_started_at.strftime('%Y-%m-%d %H:%M:%S') }}' as timestamp),
          '{{ code_version() }}',
          {{ current_catalog_version() }},
          {{ as_of_date() }},
          coalesce((select max(rating_run) from {{ rated }}), 0),
          (select max(landed_at) from {{ rated }}),
          {% if ns.unit %}true{% else %}exists (
              select 1 from {{ build_log() }}
              where code_version = '{{ code_version() }}' and unit_tests_ran){% endif %},
          {% if ns.catalog %}true{% else %}exists (
              select 1 from {{ build_log() }}
              where code_version = '{{ code_version() }}' and catalog_tests_ran
                and catalog_version = {{ current_catalog_version() }}){% endif %}
    {%- else -%}
      select 1
    {%- endif -%}
  {%- endif -%}
{% endmacro %}

{% macro code_version() -%}
  {{ var('code_version', 'unversioned') }}
{%- endmacro %}

{#- The rating_run up to which every row passed every test: -1 when no verified build of this
    code_version exists (then the scoped tests read every row). Read when the node runs and
    written into its SQL as a literal, so the planner knows how few rows pass the condition
    (PostgreSQL then reads them by index instead of scanning). -#}
{% macro verified_through() -%}
  {%- if not execute or code_version() == 'unversioned' -%}
    {{ return('-1') }}
  {%- endif -%}
  {%- set found = run_query(
        'select coalesce(max(verified_through), -1) from ' ~ build_log()
        ~ " where code_version = '" ~ code_version() ~ "'") -%}
  {{ return((found.columns[0].values()[0] | int) | string) }}
{%- endmacro %}

{#- A timestamp value as a SQL literal both engines read. -#}
{% macro timestamp_literal(value) -%}
  cast('{{ value.strftime('%Y-%m-%d %H:%M:%S.%f') }}' as timestamp)
{%- endmacro %}

{#- raw events the scoped tests read: every event of a batch not yet verified (a batch with no
    rated row at or below the verified rating_run, which includes batches not rated at all) and
    every event landed after the last verified build. As a landed_at bound (a batch's events
    carry the batch's landed_at; tests/assert_new_events_belong_to_a_batch.sql checks it),
    computed when the node runs and written as a literal, so PostgreSQL reads only the newest
    block ranges of its BRIN index on raw.events.landed_at. -#}
{% macro unverified_events_condition(landed_at='landed_at') -%}
  {%- if not execute -%}
    {{ return('true') }}
  {%- endif -%}
  {%- set through = verified_through() -%}
  {%- set found = run_query(
        'select (select min(batches.landed_at) from ' ~ source('raw', 'ingest_batches')
        ~ ' as batches where not exists (select 1 from ' ~ ref('int_usage_events_rated')
        ~ ' as rated where rated.batch_id = batches.batch_id and rated.rating_run <= '
        ~ through ~ ')), (select max(verified_landed_at) from ' ~ build_log()
        ~ " where code_version = '" ~ code_version() ~ "')") -%}
  {%- set first_unverified = found.columns[0].values()[0] -%}
  {%- set verified_up_to = found.columns[1].values()[0] -%}
  {%- set bounds = [] -%}
  {%- if first_unverified is not none -%}{%- do bounds.append(first_unverified) -%}{%- endif -%}
  {%- if verified_up_to is not none -%}
    {%- do bounds.append(verified_up_to + modules.datetime.timedelta(microseconds=1)) -%}
  {%- endif -%}
  {%- if through == '-1' or bounds | length == 0 -%}
    {{ return('true') }}
  {%- endif -%}
  {{ return(landed_at ~ ' >= ' ~ timestamp_literal(bounds | min)) }}
{%- endmacro %}

{#- Both placeholders become `true` when no verified build exists (every row is tested). -#}
{% macro expand_test_placeholders(condition) -%}
  {%- if '__unverified_ratings__' in condition -%}
    {%- set through = verified_through() -%}
    {%- set condition = condition | replace('__unverified_ratings__',
          'true' if through == '-1' else 'rating_run > ' ~ through) -%}
  {%- endif -%}
  {%- if '__unverified_events__' in condition -%}
    {%- set condition = condition | replace('__unverified_events__',
                                            unverified_events_condition()) -%}
  {%- endif -%}
  {{ return(condition) }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where') -%}
  {%- if where -%}
    {%- set filtered -%}
      (select * from {{ relation }} where {{ expand_test_placeholders(where) }}) dbt_subquery
    {%- endset -%}
    {%- do return(filtered) -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}

{#- PostgreSQL: indexes on the incremental rating table for what reads it by batch (finding
    unrated batches, delete+insert), by rating_run (the rows rated since ...) and by event_id
    (the scoped tests compare new event ids with all). DuckDB prunes row groups by min/max and
    hashes 10^7 ids in a blink; an index would only slow its inserts. -#}
{% macro index_rated_events(relation) %}
  {{ return(adapter.dispatch('index_rated_events', 'valueverse')(relation)) }}
{% endmacro %}
{% macro default__index_rated_events(relation) %}
  select 1
{% endmacro %}
{% macro postgres__index_rated_events(relation) %}
  create index if not exists {{ relation.identifier }}_batch on {{ relation }} (batch_id);
  create index if not exists {{ relation.identifier }}_run on {{ relation }} (rating_run);
  create index if not exists {{ relation.identifier }}_event on {{ relation }} (event_id);
  {{ postgres__analyze_if_stale(relation.schema, relation.identifier) }}
{% endmacro %}

{#- The aggregates built incrementally from int_usage_events_rated carry:
      catalog_version    the catalog of the rated rows they were built from
      rating_generation  the smallest rating_run of the rated table when they were built: it
                         changes only when every event is re-rated (new catalog, full refresh)
      rated_through      the greatest rating_run they have read (their high-water mark) -#}
{% macro aggregate_state_columns() -%}
    cast({{ current_catalog_version() }} as integer) as catalog_version,
    cast((select min(rating_run) from {{ ref('int_usage_events_rated') }}) as bigint)
        as rating_generation,
    cast((select max(rating_run) from {{ ref('int_usage_events_rated') }}) as bigint)
        as rated_through
{%- endmacro %}

{#- pre_hook of those aggregates: rows built from rated rows that are gone are deleted, so the
    model rebuilds from every rated row instead of adding to stale totals. -#}
{% macro delete_stale_aggregates(relation) -%}
  delete from {{ relation }}
  where catalog_version is distinct from {{ current_catalog_version() }}
     or rating_generation is distinct from
        (select min(rating_run) from {{ ref('int_usage_events_rated') }})
{%- endmacro %}

{#- The high-water mark of an incremental aggregate: the greatest rating_run it has read, among
    the rows its pre_hook will keep (-1 when none). Read when the model runs (after the rating,
    before the pre_hook) and written as a literal, so the planner knows how few rated rows are
    new and reads them by index. -#}
{% macro aggregate_high_water_mark(relation) -%}
  {%- if not execute -%}
    {{ return('-1') }}
  {%- endif -%}
  {%- set rated = ref('int_usage_events_rated') -%}
  {%- set found = run_query(
        'select coalesce(max(rated_through), -1) from ' ~ relation
        ~ ' where catalog_version = ' ~ current_catalog_version()
        ~ ' and rating_generation = (select min(rating_run) from ' ~ rated ~ ')') -%}
  {{ return((found.columns[0].values()[0] | int) | string) }}
{%- endmacro %}

{#- pre_hook of int_usage_events_rated: a new catalog re-rates every event, so the rows rated
    with another catalog go. Every row of the table has the same catalog_version (this delete
    runs in the transaction that then rates every batch again), so one row tells: when it is
    current, nothing is scanned (PostgreSQL turns the condition into a one-time filter). -#}
{% macro delete_rows_of_older_catalog(relation) -%}
  delete from {{ relation }}
  where (select catalog_version from {{ relation }} limit 1)
        is distinct from {{ current_catalog_version() }}
{%- endmacro %}
