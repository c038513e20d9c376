-- The console's My work (issue #18) reads a department's open tasks and the open approvals it
-- decides, soonest first, on every view; and a department's pages still waiting.
CREATE INDEX tasks_open_by_department ON tasks (department, approval, status, due_at);
CREATE INDEX tasks_open_approvals ON tasks (approval, status, due_at);
CREATE INDEX incident_team_waiting ON incident_team (department, acked_at);
