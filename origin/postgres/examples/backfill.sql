-- Once, before the origin serves (docs/origin.md, "Your own tables"): the rows your tables hold
-- already, copied into weft's without events, since an edge loads them as pages. Run it after
-- mirror.sql, in one transaction, so that nothing written meanwhile is missed: a change that
-- commits before it is copied here; one that commits after goes through the triggers.
BEGIN;
LOCK TABLE app_workspaces, app_people, app_rooms, app_room_members IN SHARE MODE; -- writes wait, reads go on
SET LOCAL weft.seeding = on; -- weft's triggers make no event and keep no counts

INSERT INTO weft_teams (id, name, domain) SELECT id, title, subdomain FROM app_workspaces
    ON CONFLICT DO NOTHING;
INSERT INTO weft_users (team, id, name, real_name, display_name, title, is_bot, deleted)
    SELECT workspace, 'U' || id, handle, full_name, coalesce(nickname, ''), coalesce(job_title, ''), bot, NOT active
    FROM app_people ON CONFLICT DO NOTHING;
INSERT INTO weft_channels (team, id, name, purpose, is_private, is_archived, created, creator)
    SELECT workspace, 'C' || id, slug, coalesce(about, ''), private, archived, created_at, 'U' || created_by
    FROM app_rooms ON CONFLICT DO NOTHING;
INSERT INTO weft_memberships (team, channel, user_id)
    SELECT workspace, 'C' || room, 'U' || person FROM app_room_members ON CONFLICT DO NOTHING;
-- The memberships' trigger keeps member_count from now on; it made none of these.
UPDATE weft_channels c SET member_count = (SELECT count(*) FROM weft_memberships m WHERE m.team = c.team AND m.channel = c.id);

COMMIT;
