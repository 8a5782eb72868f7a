-- A team ID is now taken in the statement that saves the registration (docs/contract.md §5),
-- so a registration that never saves never takes a number and the saved teams' numbers have
-- no holes. The numbers recorded ahead of the save are no longer needed: saved teams keep
-- the IDs they were given (captains have them in their confirmation), and the counter keeps
-- its value, so a number given out before this change is never given again.
ALTER TABLE teams DROP CONSTRAINT teams_registration_id_fkey;
ALTER TABLE teams DROP CONSTRAINT teams_team_id_fkey;
DROP TABLE team_ids;
