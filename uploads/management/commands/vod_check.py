"""Prove the VOD configuration with harmless calls before serving (and after changing it)."""

from django.core.management.base import BaseCommand, CommandError

from uploads import services


class Command(BaseCommand):
    help = ("Check the VOD credentials, region and endpoint, VOD_APP_ID and "
            "VOD_TEMPLATE_GROUP_ID with calls that read nothing and change nothing; name what "
            "is wrong. Exits 1 when something is. /readyz uses the verdict.")

    def handle(self, *args, **options):
        findings = services.vod_check()
        for finding in findings:
            mark = "skip" if finding.skipped else ("ok" if finding.ok else "FAIL")
            self.stdout.write(f"{mark:4}  {finding.setting}: {finding.detail}")
        failing = [finding.setting for finding in findings if not finding.ok]
        if failing:
            raise CommandError("VOD configuration wrong: " + "; ".join(failing))
        self.stdout.write("vod_check: the VOD configuration works")
