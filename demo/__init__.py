"""The demo data of `make run` (`manage.py seed_demo`): an app of its own, above the apps it fills."""
