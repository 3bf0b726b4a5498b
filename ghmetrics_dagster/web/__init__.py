"""The dashboard: people sign in with GitHub and read their metrics from the marts.

`config.WebConfig` holds its settings, `oauth` speaks GitHub's OAuth web flow, `accounts`
records a sign-in (the user, their token encrypted, their repositories, the login row the
login sensor reads), `views` reads what a page shows, `app.create_app` serves it all. No
Dagster import here: the refresh state comes from the app tables the login sensor shares.
"""
