import { expect } from 'chai';
import { maskUrlPassword, parseConnectionTarget, type ConnectionTarget } from '../../../src/config/connection-target';

const parse = (url: string) => parseConnectionTarget(url, '/work') as ConnectionTarget;

describe('connection targets', () => {
  it('location names the database whoever connects, with no user, password or options (issue 15)', () => {
    const as = (user: string) => parse(`postgres://${user}:pw@DB.example:5432/org?sslmode=require`).location;
    expect(as('alice')).to.equal('postgres://db.example:5432/org');
    expect(as('bob')).to.equal(as('alice'));
    expect(parse('postgres://u@db.example/org').location, 'default port').to.equal('postgres://db.example:5432/org');
    expect(parse('mssql://sa:pw@sql01/Org%20Db').location).to.equal('mssql://sql01:1433/Org Db');
    expect(parse('pglite:data/org').location).to.equal('pglite:/work/data/org');
    expect(JSON.stringify(parse('postgres://u:pw@h/org'))).not.to.contain('pw');
  });

  it('masks a password given in the query string too (pg reads `?password=`)', () => {
    const masked = maskUrlPassword('postgres://u@h/org?password=hunter2&sslmode=require');
    expect(masked).not.to.contain('hunter2');
    expect(masked).to.contain('sslmode=require');
    expect(parse('postgres://u@h/org?Password=hunter2').display).not.to.contain('hunter2');
  });
});
