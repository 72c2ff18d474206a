-- Tenant globex: a flat task list, each task owned by one user.
CREATE TABLE task (
  id bigserial PRIMARY KEY,
  summary text NOT NULL,
  priority int,
  tags text[],
  done boolean DEFAULT false,
  owner text
);
