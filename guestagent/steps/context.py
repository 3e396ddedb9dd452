"""What every step is handed: the system, the config, the state, the
metadata, and what is worked out from them once per run (the user-data's
#cloud-config with vendor data merged, its scripts, the instance data)."""

import threading


class Context:
    """What a step gets: the metadata, the config, and the one system seam."""

    def __init__(self, system, config, state, metadata, new_instance, stage):
        self.system = system
        self.config = config
        self.state = state
        self.metadata = metadata
        self.new_instance = new_instance
        # an instance configured on an earlier boot (this boot is not its
        # first): a per-instance step not done yet was cut off there
        self.later_boot = False
        # the stages.Stage this run is: e.g. stage.network_up
        self.stage = stage
        self._userdata = None
        self._user_scripts = None
        self._cloud_config = None
        self._lock = threading.RLock()
        # power.Request objects: acted on once the stage's status is written
        self.power_requests = []
        # step -> (Popen, what): work a step left running; the step is done
        # only once it has ended (guestagent/state/done_markers.py)
        self.left_running = {}

    @property
    def userdata(self):
        """The decoded user-data (parts, scripts, #cloud-config), decoded once."""
        with self._lock:  # a background step may ask at the same time
            if self._userdata is None:
                from ..userdata import decode
                raw = self.metadata.user_data if self.metadata else b""
                self._userdata = decode(raw, self.config.getint("userdata", "max_bytes"),
                                        jinja=self.template_variables)
        return self._userdata

    @property
    def user_scripts(self):
        """The user-data's scripts.  A stage that has not decoded the user-data
        for its #cloud-config (the final stage reads the stored copy) splits
        the parts without parsing any YAML: the config stage has already
        logged what the #cloud-config said."""
        with self._lock:
            if self._userdata is not None:
                return self._userdata.scripts
            if self._user_scripts is None:  # asked twice in one run (pending, then run)
                from ..userdata import decode
                raw = self.metadata.user_data if self.metadata else b""
                self._user_scripts = decode(raw, self.config.getint("userdata", "max_bytes"),
                                            log_warnings=False, cloud_config=False,
                                            jinja=self.template_variables).scripts
            return self._user_scripts

    def template_variables(self):
        """(Jinja variables, False): the instance data, for `## template: jinja` parts."""
        from ..metadata.instance_data import build, jinja_variables
        return jinja_variables(build(self.metadata, self.system)), False

    @property
    def cloud_config(self):
        """The #cloud-config dict: the user's over the vendor's ({} when there
        is none), worked out once per instance (userdata/combined.py)."""
        if not self.config.getbool("userdata", "enabled") or self.metadata is None:
            return {}
        with self._lock:
            if self._cloud_config is None:
                from ..userdata.combined import cloud_config
                self._cloud_config = cloud_config(
                    self.metadata, self.config, self.state,
                    lambda: self.userdata.cloud_config, self.template_variables)
        return self._cloud_config
