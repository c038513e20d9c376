-- Facts per jurisdiction (issue #16, part 1): a subject list may say where each person is
-- affected (`jurisdiction` column: CN, SG, …); the incident's `by_jurisdiction` counts follow
-- the subjects held per jurisdiction. NULL: the list did not say.
ALTER TABLE subjects ADD COLUMN jurisdiction TEXT;
