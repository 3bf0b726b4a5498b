select
    login,
    display_name
from {{ source('app', 'users') }}
