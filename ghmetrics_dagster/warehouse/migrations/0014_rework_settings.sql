-- DORA's rework rate (docs/dora.md): which merged pull requests are hotfixes, per repository.
-- Null means the default (`(?i)^hot-?fix$` for labels, `(?i)^hot-?fix[/_-]` for head branches).
alter table app.repository_settings add column if not exists hotfix_label_regex text;
alter table app.repository_settings add column if not exists hotfix_branch_regex text;
