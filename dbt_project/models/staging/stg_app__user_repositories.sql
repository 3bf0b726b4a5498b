select
    login,
    repo_full_name
from {{ source('app', 'user_repositories') }}
