-- The performance model forecasts DORA's overall Quick Check score (0..10, docs/dora.md)
-- instead of the former weighted 0..100 performance score. The column follows; the values on
-- the old scale are dropped (the insights asset rewrites a user's rows on their next refresh).
do $$
begin
    if exists (
        select 1 from information_schema.columns
        where table_schema = 'ml' and table_name = 'insights' and column_name = 'predicted_performance_score'
    ) then
        alter table ml.insights rename column predicted_performance_score to predicted_overall_score;
        update ml.insights set predicted_overall_score = null;
    end if;
end
$$;
alter table ml.insights add column if not exists predicted_overall_score numeric;
