{#- Generic test: in one scan, every present value of each column in `bounds` ({column: [min,
    max]}, either bound null for none) lies within its bounds, both included. Fails with the
    rows that break any bound. -#}
{% test columns_between(model, bounds) %}
select *
from {{ model }}
where false
{%- for column, limits in bounds.items() %}
    {%- if limits[0] is not none %} or {{ column }} < {{ limits[0] }}{% endif %}
    {%- if limits[1] is not none %} or {{ column }} > {{ limits[1] }}{% endif %}
{%- endfor %}
{% endtest %}
