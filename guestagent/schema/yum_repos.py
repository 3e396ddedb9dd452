"""#cloud-config keys of the yum_repos step: their validators (see guestagent/schema)."""

from .checks import absolute_path, mapping_of_mappings


def check_yum_repos(value, notes=None):
    return mapping_of_mappings(
        value, "a mapping of repository ids to {baseurl, name, enabled, gpgcheck, ...}")


def check_yum_repo_dir(value, notes=None):
    return absolute_path(value, "directory path")
