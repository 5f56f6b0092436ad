"""Incident drills: inject a fault, time the alerts it raises, restore, write a report (roles/drill)."""
