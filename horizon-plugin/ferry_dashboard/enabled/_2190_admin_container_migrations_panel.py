# Ferry's Container Migrations panel, under Admin -> Compute (Horizon's enabled file).
PANEL = 'container_migrations'
PANEL_DASHBOARD = 'admin'
PANEL_GROUP = 'compute'

ADD_PANEL = 'ferry_dashboard.content.container_migrations.panel.ContainerMigrations'
ADD_INSTALLED_APPS = ['ferry_dashboard']

from ferryclient import exceptions as _ferry_exc

# Errors from Ferry's client are shown as Horizon messages, never as a server error page. A
# refusal (403) is not `unauthorized` here: that category would log the user out.
ADD_EXCEPTIONS = {
    'recoverable': (_ferry_exc.ClientException,),
    'not_found': (_ferry_exc.NotFound,),
}
