"""asv benchmark suites for eegbench (one module per concern) and the fixtures they share."""
