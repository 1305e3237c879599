"""The Live Migrate form: a target host, or the scheduler's choice."""
from django.utils.translation import gettext_lazy as _
from horizon import forms
from horizon import messages

from ferryclient import exceptions as ferry_exc
from ferry_dashboard.api import ferry
from ferry_dashboard.content.container_migrations import errors

SCHEDULER = ''


class LiveMigrateForm(forms.SelfHandlingForm):
    container_id = forms.CharField(widget=forms.HiddenInput())
    container_name = forms.CharField(label=_('Container'), required=False,
                                     widget=forms.TextInput(attrs={'readonly': 'readonly'}))
    current_host = forms.CharField(label=_('Current Host'), required=False,
                                   widget=forms.TextInput(attrs={'readonly': 'readonly'}))
    host = forms.ThemableChoiceField(
        label=_('Target Host'), required=False,
        help_text=_('Hosts that are up and enabled. Or leave it to the scheduler to pick one '
                    'that also has a working CRIU and the most room.'))

    def __init__(self, request, *args, **kwargs):
        super(LiveMigrateForm, self).__init__(request, *args, **kwargs)
        current = kwargs.get('initial', {}).get('current_host')
        choices = [(SCHEDULER, _('Let the scheduler choose'))]
        try:
            choices += [(h.name, '%s (%s)' % (h.name, h.state))
                        for h in ferry.host_list(request)
                        if h.name != current and h.state == 'up'
                        and h.to_dict().get('status', 'enabled') != 'disabled']
        except Exception:
            errors.handle(request, _('Unable to list the compute hosts.'))
        self.fields['host'].choices = choices

    def handle(self, request, data):
        try:
            m = ferry.migrate(request, data['container_id'], host=data.get('host') or None)
        except ferry_exc.ClientException as e:
            messages.error(request, _('Live migration of %(name)s was refused: %(reason)s')
                           % {'name': data.get('container_name') or data['container_id'],
                              'reason': e})
            return False
        messages.success(request, _('Live migration %(uuid)s of %(name)s to %(host)s '
                                    'accepted.')
                         % {'uuid': m.uuid[:8], 'name': m.container_name,
                            'host': m.dest_host or _('a host the scheduler chooses')})
        return m


class EvacuateHostForm(forms.SelfHandlingForm):
    host = forms.CharField(label=_('Host'), widget=forms.TextInput(
        attrs={'readonly': 'readonly'}))
    target_host = forms.ThemableChoiceField(
        label=_('Target Host'), required=False,
        help_text=_('Every container to this host, or each to a host the scheduler chooses.'))
    max_parallel = forms.IntegerField(
        label=_('Migrations at a Time'), min_value=1, max_value=16, initial=2,
        help_text=_('How many containers move at the same time.'))

    def __init__(self, request, *args, **kwargs):
        super(EvacuateHostForm, self).__init__(request, *args, **kwargs)
        source = kwargs.get('initial', {}).get('host')
        choices = [(SCHEDULER, _('Let the scheduler choose'))]
        try:
            choices += [(h.name, '%s (%s)' % (h.name, h.state))
                        for h in ferry.host_list(request)
                        if h.name != source and h.state == 'up'
                        and h.to_dict().get('status', 'enabled') != 'disabled']
        except Exception:
            errors.handle(request, _('Unable to list the compute hosts.'))
        self.fields['target_host'].choices = choices

    def handle(self, request, data):
        try:
            e = ferry.host_evacuate(request, data['host'], target_host=data.get('target_host'),
                                    max_parallel=data.get('max_parallel'))
        except ferry_exc.ClientException as exc:
            messages.error(request, _('Migrating everything off %(host)s was refused: '
                                      '%(reason)s') % {'host': data['host'], 'reason': exc})
            return False
        count = len(e.to_dict().get('containers') or [])
        messages.success(request, _('Evacuation %(uuid)s of %(host)s accepted: %(count)d '
                                    'containers to move; the host is disabled until you '
                                    'enable it again.')
                         % {'uuid': e.uuid[:8], 'host': data['host'], 'count': count})
        return e
