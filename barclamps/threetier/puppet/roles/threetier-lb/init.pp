# threetier-lb: render the load-balancer config (haproxy syntax) over every application
# backend. The injected attributes arrive as Hiera data: lookup('threetier') holds root, lb.port,
# lb.balance and lb.backends (the list collected from every threetier-app node-role).
$tt       = lookup('threetier')
$root     = regsubst($tt['root'], '/+$', '')
$lb       = $tt['lb']
$backends = $lb['backends']

file { ["${root}/etc", "${root}/etc/threetier"]:
  ensure => directory,
}

file { "${root}/etc/threetier/lb.conf":
  ensure  => file,
  mode    => '0644',
  content => inline_epp(@(EOT), { 'lb' => $lb, 'backends' => $backends }),
    <%- | Hash $lb, Array $backends | -%>
    # written by crowbar role threetier-lb
    frontend threetier
        bind *:<%= $lb['port'] %>
        default_backend apps

    backend apps
        balance <%= $lb['balance'] %>
    <% $backends.each |$i, $b| { -%>
        server app<%= $i + 1 %> <%= $b %> check
    <% } -%>
    | EOT
}
