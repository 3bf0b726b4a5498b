select
    login,
    repo_full_name
-- app.user_scope: registered and not recorded unreadable by the user's own token.
from {{ source('app', 'user_scope') }}
