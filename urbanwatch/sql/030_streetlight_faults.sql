-- Street-lighting fault fields (docs/domain.md §4.2–4.3, SL_RELAY_FAIL and SL_DRIVER_FAULT):
-- the commanded state, the relay's feedback contact and the DALI driver's diagnostic flags,
-- added to StreetlightReading (urbanwatch/kinds/streetlight.py). Written by
-- `python -m urbanwatch.schema new-columns streetlight` (numbered by hand). Nullable: a
-- controller without these reports leaves them NULL, and rows stored before stay as they are.
-- On TimescaleDB a nullable column without a default is added to compressed chunks too.
ALTER TABLE streetlight_readings ADD COLUMN IF NOT EXISTS commanded_state text;
ALTER TABLE streetlight_readings ADD COLUMN IF NOT EXISTS relay_feedback text;
ALTER TABLE streetlight_readings ADD COLUMN IF NOT EXISTS driver_thermal_derating boolean;
ALTER TABLE streetlight_readings ADD COLUMN IF NOT EXISTS driver_thermal_shutdown boolean;
ALTER TABLE streetlight_readings ADD COLUMN IF NOT EXISTS driver_gear_failure boolean;
